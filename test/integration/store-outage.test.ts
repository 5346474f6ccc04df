import { describe, expect, it } from 'vitest';
import { createOutageStore } from '../helpers/outage-store.js';
import { configYaml, eventually, startProxy } from '../helpers/start-proxy.js';
import { provider, upstreamYaml } from './token-fixtures.js';

async function setup(auth = '') {
  const fake = await provider({ kind: 'apiax' });
  const store = createOutageStore();
  const proxy = await startProxy(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken(), auth })), { store });
  const call = (path = '/x') => fetch(`${proxy.url}/apiax${path}`);
  expect((await call()).status).toBe(200);
  return { fake, store, proxy, call };
}

describe('token store outage', () => {
  it('keeps serving the in-memory token, and never refreshes without the lock by default', async () => {
    const { fake, store, proxy, call } = await setup();
    const tokenCalls = fake.counters.tokenCalls;
    store.down = true;
    for (let i = 0; i < 5; i++) expect((await call()).status).toBe(200);

    // The upstream now rejects the token: without the store's lock there is no refresh, so the client gets
    // a clear 503 (not the stale rejection) and no refresh token is sent.
    fake.expireAccessTokens();
    const rejected = await call();
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(fake.counters.tokenCalls).toBe(tokenCalls);
    const status = (await (await fetch(`${proxy.adminUrl}/status`)).json()) as { upstreams: { lastRefresh?: { error?: string } }[] };
    expect(status.upstreams[0]?.lastRefresh?.error).toContain('refreshWithoutLock');

    // Back up: the next rejection refreshes under the lock and the request is replayed.
    store.down = false;
    await eventually(async () => (await call()).status === 200, 10_000, 'recovery after the store is back');
    expect(fake.counters.tokenCalls).toBe(tokenCalls + 1);
    expect(fake.counters.reuseAttempts).toBe(0);
  });

  it('with refreshWithoutLock: true refreshes anyway, serves the new token from memory, and stores it once the store is back', async () => {
    const { fake, store, proxy, call } = await setup('refreshWithoutLock: true');
    const stored = await store.inner.read('apiax');
    store.down = true;
    fake.expireAccessTokens();
    expect((await call()).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);

    const readyz = async () =>
      (await (await fetch(`${proxy.adminUrl}/readyz`)).json()) as { ready: boolean; warnings?: Record<string, string> };
    await eventually(async () => (await readyz()).warnings?.apiax !== undefined, 5000, 'the readyz warning while the write is pending');
    expect((await readyz()).ready).toBe(true);

    store.down = false;
    await eventually(
      async () => ((await store.inner.read('apiax'))?.generation ?? 0) > (stored?.generation ?? 0),
      10_000,
      'the retried write',
    );
    await eventually(async () => (await readyz()).warnings === undefined, 5000, 'the warning to clear');
    const record = await store.inner.read('apiax');
    expect(record?.refreshToken).toBe(fake.issuedTokens.filter((token) => token.includes('-rt-')).at(-1));
  });
});
