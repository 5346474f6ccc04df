/**
 * Several proxies over one real redis-server, in this process: the shared record, the refresh lock and
 * pub/sub make one token call per generation for all of them. (Separate OS processes are exercised in
 * test/integration/redis-processes.test.ts.)
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startRedis } from '../helpers/redis-server.js';
import { configYaml, eventually, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import { provider, upstreamYaml } from './token-fixtures.js';

async function replicas(count: number, kind: 'apiax' | 'v3' = 'apiax', auth = '') {
  const redis = await startRedis(onTestFinished);
  const fake = await provider({ kind, tokenDelayMs: 200 });
  const seed = fake.issueRefreshToken();
  const top = `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: redis, url: "redis://127.0.0.1:${redis.port}/0", keyPrefix: "t${Date.now()}:" }\n`;
  const proxies: RunningProxy[] = [];
  for (let i = 0; i < count; i++)
    proxies.push(await startProxy(configYaml(upstreamYaml(fake, { seed, auth }), top), { owner: `replica-${i}` }));
  return { redis, fake, proxies };
}

describe('many replicas over one Redis', () => {
  it('the seed is written once and every replica adopts the one stored token', async () => {
    const { fake, proxies } = await replicas(3);
    const responses = await Promise.all(proxies.map((proxy) => fetch(`${proxy.url}/apiax/x`)));
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200]);
    expect(fake.counters.tokenCalls).toBe(1);
    expect(fake.counters.reuseAttempts).toBe(0);
  });

  it('a rejection on every replica at once causes exactly one token call, and every request succeeds', async () => {
    const { fake, proxies } = await replicas(3);
    await Promise.all(proxies.map((proxy) => fetch(`${proxy.url}/apiax/warm`)));
    const before = fake.counters.tokenCalls;
    fake.expireAccessTokens();
    const responses = await Promise.all(Array.from({ length: 90 }, (_, i) => fetch(`${proxies[i % proxies.length]?.url}/apiax/r${i}`)));
    expect(responses.filter((response) => response.status !== 200)).toEqual([]);
    expect(fake.counters.tokenCalls - before).toBe(1);
    expect(fake.counters.reuseAttempts).toBe(0);
  });

  it('a replica that saw no rejection learns the new token by pub/sub, without a store read per request', async () => {
    const { fake, proxies } = await replicas(2);
    const [first, second] = proxies as [RunningProxy, RunningProxy];
    await fetch(`${first.url}/apiax/warm`);
    await fetch(`${second.url}/apiax/warm`);
    fake.expireAccessTokens();
    expect((await fetch(`${first.url}/apiax/x`)).status).toBe(200); // first refreshes
    const generation = () => second.app.statuses()[0]?.generation ?? 0;
    await eventually(
      () => generation() === (first.app.statuses()[0]?.generation ?? -1),
      3000,
      'the second replica to adopt the new generation',
    );
    const storeOps = async () =>
      Number(
        /oauth_sidecar_store_operations_total\{operation="read"\} (\d+)/.exec(
          await (await fetch(`${second.adminUrl}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    // The first replica's replay was accepted, so it also removes the "fetched after a rejection" mark from
    // the record, which the second re-reads once: let that settle, then count.
    await eventually(
      async () => {
        const reads = await storeOps();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return (await storeOps()) === reads;
      },
      5000,
      'the store reads to settle',
    );
    const readsBefore = await storeOps();
    for (let i = 0; i < 20; i++) expect((await fetch(`${second.url}/apiax/y${i}`)).status).toBe(200);
    expect(await storeOps()).toBe(readsBefore);
    expect(fake.counters.tokenCalls).toBe(2);
  });
});

describe('a dead credential seen by one replica', () => {
  it('is known to every replica through the change feed, with no token call of their own', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'apiax' });
    const top = `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: redis, url: "redis://127.0.0.1:${redis.port}/0", keyPrefix: "dead${Date.now()}:" }\n`;
    const seed = fake.issueRefreshToken();
    const first = await startProxy(configYaml(upstreamYaml(fake, { seed }), top), { owner: 'replica-a' });
    expect((await fetch(`${first.url}/apiax/x`)).status).toBe(200);
    const second = await startProxy(configYaml(upstreamYaml(fake, { seed }), top), { owner: 'replica-b' });
    const tokenCalls = fake.counters.tokenCalls;

    // Another client spends the stored refresh token behind the proxies' backs (Keycloak then kills the
    // session), and the next refresh by the first replica finds it dead.
    await fetch(fake.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: 'integration-api',
        refresh_token: fake.issuedTokens.filter((t) => t.includes('-rt-')).at(-1) ?? '',
      }),
    });
    fake.expireAccessTokens();
    await fetch(`${first.url}/apiax/x`);
    await eventually(() => first.app.statuses()[0]?.state === 'credential_dead', 5000, 'the first replica to find the credential dead');
    await eventually(() => second.app.statuses()[0]?.state === 'credential_dead', 3000, 'the second replica to hear of it');
    expect(fake.counters.tokenCalls - tokenCalls).toBe(2); // the outside spend, and the first replica's one attempt
    const readyz = await fetch(`${second.adminUrl}/readyz`);
    expect(readyz.status).toBe(503);
  });
});
