import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { configYaml, startProxy } from '../helpers/start-proxy.js';

describe('smoke: one request through the proxy to each provider', () => {
  for (const kind of ['collaborate', 'apiax', 'v3'] as const) {
    it(`${kind}: attaches a fresh bearer token and strips the client's Authorization`, async () => {
      const provider = await startFakeProvider({ kind });
      onTestFinished(() => provider.close());
      const seed = provider.issueRefreshToken();
      const credentials = kind === 'apiax' ? '' : `\n    clientId: client-id\n    clientSecret: client-secret`;
      const proxy = await startProxy(
        configYaml(
          `${kind}:\n  target: ${provider.apiBaseUrl}\n  auth:\n    preset: ${kind}\n    tokenUrl: ${provider.tokenUrl}${credentials}\n    refreshToken: ${seed}`,
        ),
      );
      const response = await fetch(`${proxy.url}/${kind}/3/sites?x=1`, {
        headers: { authorization: 'Bearer client-sent', accept: 'application/json' },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { path: string; query: string };
      expect(body.path).toMatch(/\/3\/sites$/);
      expect(provider.counters.tokenCalls).toBe(1);
      const seen = provider.apiRequests.at(-1);
      expect(seen?.headers.authorization).toMatch(/^Bearer /);
      expect(seen?.headers.authorization).not.toContain('client-sent');
      expect(proxy.rawLogs()).not.toContain(seed);
    });
  }
});
