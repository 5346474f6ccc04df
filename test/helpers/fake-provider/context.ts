import type { ResolvedOptions } from './options.js';
import { TokenRequestGate } from './token-gate.js';
import type { TokenStore } from './token-store.js';
import type { ApiBehaviour, ApiHandler, FakeProviderClientCounters, FakeProviderCounters, RecordedRequest } from './types.js';
import type { WireFormat } from './wire-format.js';

/** Knobs a test turns while the provider runs. */
export interface Controls {
  tokenDelayMs: number;
  failures: { remaining: number; status: number; body: string | undefined; headers: Readonly<Record<string, string>> };
  apiBehaviour: ApiBehaviour;
  apiHandler: ApiHandler | null;
}

/** Everything one running provider shares between its request handlers. */
export interface ProviderContext {
  readonly options: ResolvedOptions;
  readonly format: WireFormat;
  readonly store: TokenStore;
  readonly counters: FakeProviderCounters;
  readonly clientCounters: FakeProviderClientCounters;
  readonly tokenRequests: RecordedRequest[];
  readonly apiRequests: RecordedRequest[];
  readonly controls: Controls;
  readonly gate: TokenRequestGate;
  /** How many processed refresh_token grants presented each refresh token. */
  readonly presentations: Map<string, number>;
  /** Resolves true after `ms`, or false as soon as the provider closes (so close() never waits on a delay). */
  sleep(ms: number): Promise<boolean>;
  /** Ends pending sleeps; later sleeps resolve false at once. */
  stopSleeping(): void;
}

export function createContext(options: ResolvedOptions, format: WireFormat, store: TokenStore): ProviderContext {
  const pending = new Map<NodeJS.Timeout, (done: boolean) => void>();
  let stopped = false;
  return {
    options,
    format,
    store,
    counters: { tokenCalls: 0, refreshGrants: 0, reuseAttempts: 0, invalidGrants: 0, apiCalls: 0, apiRejections: 0 },
    clientCounters: { clientCredentialsGrants: 0, invalidClients: 0 },
    tokenRequests: [],
    apiRequests: [],
    controls: {
      tokenDelayMs: options.tokenDelayMs,
      failures: { remaining: 0, status: 503, body: undefined, headers: {} },
      apiBehaviour: 'normal',
      apiHandler: null,
    },
    gate: new TokenRequestGate(),
    presentations: new Map(),
    sleep(ms) {
      if (stopped) return Promise.resolve(false);
      if (ms <= 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(timer);
          resolve(true);
        }, ms);
        pending.set(timer, resolve);
      });
    },
    stopSleeping() {
      stopped = true;
      for (const [timer, resolve] of pending) {
        clearTimeout(timer);
        resolve(false);
      }
      pending.clear();
    },
  };
}
