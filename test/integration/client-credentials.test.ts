/**
 * auth.grant client_credentials end to end: proxy replicas as real processes (`oauth-sidecar serve` from
 * dist/) over a real redis-server, in front of the fake provider's generic oauth2 server. Under steady
 * traffic from every replica, all of them together make one token call per expiry; a wrong client secret
 * is one verdict for all of them, named with the setting to fix.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startReplicas, startTraffic, waitUntil } from '../helpers/proxy-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { replicaConfig, standaloneStore, storedGeneration } from './replica-fixtures.js';
import { provider } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

/** Tokens live 2 s and are refreshed at 75% of that: a new token every 1.5 s, for all replicas together. */
const LIFETIME_MS = 2_000;
const REFRESH_EVERY_MS = 1_500;
const CLIENT_CREDENTIALS = 'grant: client_credentials\nearlyRefreshFraction: 0.75\nearlyRefreshSeconds: 0';

describe('grant client_credentials, 3 replica processes over one Redis', () => {
  it('steady traffic from all three for over three token lifetimes: one token call per expiry, no failed request, only issued tokens sent', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'oauth2', accessTokenLifetimeSeconds: LIFETIME_MS / 1000 });
    const config = replicaConfig(standaloneStore(redis, 'cc:'), [{ fake, options: { seed: null, auth: CLIENT_CREDENTIALS } }]);
    const replicas = await startReplicas(config, 3);
    // No seed, no login: the first token is fetched as the replicas start.
    await waitUntil(
      'every replica holds a token',
      async () => (await Promise.all(replicas.map((r) => r.status('oauth2')))).every((s) => s.state === 'ok'),
      10_000,
    );
    expect(fake.counters.tokenCalls).toBe(1);

    const started = performance.now();
    const traffic = startTraffic(
      replicas.map((replica) => `${replica.url}/oauth2`),
      6,
    );
    await new Promise((resolve) => setTimeout(resolve, 3 * LIFETIME_MS + 500));
    const result = await traffic.stop();
    const elapsedMs = performance.now() - started;

    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(100);
    // Every token call was a client_credentials grant that got a token, and every token got stored as one
    // generation: no replica called for a token another one had already stored.
    const calls = fake.counters.tokenCalls;
    expect(fake.clientCounters.clientCredentialsGrants).toBe(calls);
    expect(fake.clientCounters.invalidClients).toBe(0);
    expect(fake.counters.refreshGrants).toBe(0);
    const generation = await storedGeneration(redis, 'cc:', 'oauth2');
    expect(generation).toBe(calls);
    // One call per expiry (plus the first): three replicas refreshing on their own would make about three times as many.
    expect(calls).toBeGreaterThanOrEqual(1 + Math.floor((3 * LIFETIME_MS) / REFRESH_EVERY_MS) - 1);
    expect(calls).toBeLessThanOrEqual(1 + Math.floor(elapsedMs / REFRESH_EVERY_MS) + 1);
    // Every request the API saw carried a token the provider issued, and none carried an expired one.
    const issued = new Set(fake.issuedTokens);
    const unissued = fake.apiRequests.filter((req) => !issued.has((req.headers.authorization ?? '').replace(/^Bearer /, '')));
    expect(unissued).toHaveLength(0);
    expect(fake.counters.apiRejections).toBe(0);

    for (const replica of replicas) {
      const status = await replica.status('oauth2');
      expect(status).toMatchObject({ grant: 'client_credentials', state: 'ok' });
      expect(status.refreshTokenFingerprint).toBeUndefined();
      expect(replica.events('credential_dead')).toEqual([]);
      expect(replica.events('refresh_in_flight_found')).toEqual([]);
      const logs = JSON.stringify(replica.cli.logs());
      for (const secret of [...fake.issuedTokens, 'client-secret-5c1e7a9f']) expect(logs).not.toContain(secret);
    }
    const perReplica = replicas.map((replica) => replica.events('token_refreshed').length);
    expect(perReplica.reduce((sum, count) => sum + count, 0)).toBe(calls);
    console.log(
      `client_credentials: 3 replicas, ${result.ok} requests in ${Math.round(elapsedMs)} ms, ${calls} token calls (by replica: ${perReplica.join(', ')})`,
    );
  });

  it('a wrong client secret: one token call for all replicas, every one dead with the setting to fix, requests answered 503 CREDENTIAL_DEAD', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'oauth2', clientSecret: 'the-right-secret' });
    const config = replicaConfig(standaloneStore(redis, 'ccdead:'), [{ fake, options: { seed: null, auth: CLIENT_CREDENTIALS } }]);
    const replicas = await startReplicas(config, 3);
    await waitUntil(
      'every replica is dead',
      async () => (await Promise.all(replicas.map((r) => r.status('oauth2')))).every((s) => s.state === 'credential_dead'),
      10_000,
    );
    expect(fake.counters.tokenCalls).toBe(1);
    expect(fake.clientCounters.invalidClients).toBe(1);
    for (const replica of replicas) {
      const response = await fetch(`${replica.url}/oauth2/x`);
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('CREDENTIAL_DEAD');
      expect(body.error.message).toMatch(/refused the client credentials \(grant client_credentials\).*invalid_client/);
      expect(body.error.message).toContain('check auth.clientId and auth.clientSecret (e.g. export OAUTH2_CLIENT_SECRET=');
      const readyz = await replica.readyz();
      expect(readyz.status).toBe(503);
      expect(readyz.body.notReady?.oauth2?.state).toBe('credential_dead');
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(fake.counters.tokenCalls).toBe(1);
  });
});
