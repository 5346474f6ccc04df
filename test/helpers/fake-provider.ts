// Test doubles of the three upstream OAuth APIs (facts in docs/providers.md), as real HTTP servers.
export { startFakeProvider } from './fake-provider/server.js';
export type {
  ApiBehaviour,
  ApiHandler,
  FakeProvider,
  FakeProviderCounters,
  FakeProviderOptions,
  ProviderKind,
  RecordedRequest,
  TokenGate,
} from './fake-provider/types.js';
