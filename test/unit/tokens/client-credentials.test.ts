/**
 * auth.grant client_credentials with fake time: the first token at start without a record, the early
 * refresh, the refresh on a rejection, one token call per expiry for replicas sharing a store, and what
 * the in-flight mark and dead verdicts (rules for one-time refresh tokens) must not do to this grant.
 */
import { describe, expect, it } from 'vitest';
import { ProxyError, TokenEndpointError } from '../../../src/errors.js';
import type { TokenRecord } from '../../../src/store/token-store.js';
import { fingerprint } from '../../../src/tokens/fingerprint.js';
import { CLIENT_CREDENTIALS_AUTH, UPSTREAM, cluster, upstreamConfig, type Cluster } from './replicas.js';

const CLIENT_CREDENTIALS = { type: 'client_credentials' };

const invalidClient = (): TokenEndpointError =>
  new TokenEndpointError('client_rejected', 'token endpoint answered HTTP 401 (invalid_client: Client authentication failed)', {
    httpStatus: 401,
    providerCode: 'invalid_client',
  });
const unavailable = (): TokenEndpointError =>
  new TokenEndpointError('transient', 'token endpoint answered HTTP 503', { httpStatus: 503, retryAfterMs: undefined });

function clientCredentialsCluster(authYaml: string[] = []): Cluster {
  return cluster(authYaml, [], CLIENT_CREDENTIALS_AUTH);
}

const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.catch((error: unknown) => error);

describe('grant client_credentials (fake clock)', () => {
  it('gets the first token at start when the store has no record: no seed, no login, nothing kept but the access token', async () => {
    const { clock, endpoint, store, replica } = clientCredentialsCluster();
    const a = await replica('a');
    await clock.advance(0);
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.last.grant).toEqual(CLIENT_CREDENTIALS);
    // The scripted endpoint sends a refresh token anyway (RFC 6749 §4.4.3 says it should not): it is not kept.
    endpoint.last.succeed(300_000);
    await clock.advance(0);
    expect(a.manager.state).toBe('valid');
    expect(a.manager.current()).toMatchObject({ generation: 1, authorization: 'Bearer at-1' });
    const stored = (await store.read(UPSTREAM)) as TokenRecord;
    expect(stored).toMatchObject({ generation: 1, accessToken: 'at-1', writer: 'a' });
    expect(stored.refreshToken).toBeUndefined();
    expect(stored.refreshInFlight).toBeUndefined();
    const status = a.manager.status();
    expect(status).toMatchObject({ grant: 'client_credentials', state: 'ok', generation: 1, refreshTokenFingerprint: undefined });
    expect(a.events('needs_credentials')).toEqual([]);
    expect(JSON.stringify(a.logs)).not.toContain('cs-1');
  });

  it.each([
    { yaml: [], lifetimeMs: 1_000_000, refreshAfterMs: 800_000, rule: '80% of the lifetime' },
    {
      yaml: ['earlyRefreshFraction: 0.9', 'earlyRefreshSeconds: 120'],
      lifetimeMs: 600_000,
      refreshAfterMs: 480_000,
      rule: '120 s before expiry',
    },
  ])(
    'refreshes early ($rule), not a millisecond earlier, keeping the current token meanwhile',
    async ({ yaml, lifetimeMs, refreshAfterMs }) => {
      const { clock, endpoint, replica } = clientCredentialsCluster(yaml);
      const a = await replica('a');
      await clock.advance(0);
      endpoint.last.succeed(lifetimeMs);
      await clock.advance(0);
      await clock.advance(refreshAfterMs - 1);
      expect(endpoint.requests).toHaveLength(1);
      await clock.advance(1);
      expect(endpoint.requests).toHaveLength(2);
      expect(endpoint.last.grant).toEqual(CLIENT_CREDENTIALS);
      expect(a.manager.state).toBe('refreshing');
      expect(a.manager.current()?.generation).toBe(1);
      endpoint.last.succeed(lifetimeMs);
      await clock.advance(0);
      expect(a.manager.current()).toMatchObject({ generation: 2, authorization: 'Bearer at-2' });
      expect(a.events('token_state_invalid')).toEqual([]);
    },
  );

  it('a rejection makes one token call, however many requests were rejected; the replay gets the new generation', async () => {
    const { clock, endpoint, store, replica } = clientCredentialsCluster();
    const a = await replica('a');
    await clock.advance(0);
    endpoint.last.succeed();
    await clock.advance(0);

    expect(a.manager.replayDecision(1)).toBe('refresh');
    const replays = [a.manager.replacementFor(1), a.manager.replacementFor(1), a.manager.replacementFor(1)];
    await clock.advance(0);
    expect(endpoint.requests).toHaveLength(2);
    expect(endpoint.last.grant).toEqual(CLIENT_CREDENTIALS);
    endpoint.last.succeed();
    await clock.advance(0);
    for (const replay of replays) await expect(replay).resolves.toMatchObject({ generation: 2, authorization: 'Bearer at-2' });
    // The same rejection rule as for refresh tokens: the new token is marked as fetched after a rejection.
    expect((await store.read(UPSTREAM))?.fetchedAfterRejection).toBe(true);
    // A late rejection of generation 1 finds the newer token at once.
    expect(a.manager.replayDecision(1)).toBe('newer');
    expect(endpoint.requests).toHaveLength(2);
  });

  it('two replicas on one store make exactly one token call per expiry, the other adopting the stored token', async () => {
    const c = clientCredentialsCluster(['lockLeaseMs: 3000']);
    const a = await c.replica('a');
    const b = await c.replica('b');
    await c.clock.advance(0);
    expect(c.endpoint.requests).toHaveLength(1);
    c.endpoint.last.succeed(60_000);
    await c.clock.advanceUntil(() => b.manager.current()?.generation === 1 && a.manager.current()?.generation === 1, 5_000);

    for (let expiry = 1; expiry <= 3; expiry += 1) {
      // 60 s lifetime: 80% is 48 s. Both replicas' timers fire then; only the lease holder calls.
      await c.clock.advanceUntil(() => c.endpoint.requests.length === expiry + 1, 60_000, 100);
      // The token endpoint is slow: the other replica, blocked by the lease, must not call meanwhile.
      await c.clock.advance(5_000);
      expect(c.endpoint.requests).toHaveLength(expiry + 1);
      c.endpoint.last.succeed(60_000);
      const generation = expiry + 1;
      await c.clock.advanceUntil(
        () => a.manager.current()?.generation === generation && b.manager.current()?.generation === generation,
        5_000,
      );
      expect((await c.store.read(UPSTREAM))?.generation).toBe(generation);
    }
    expect(c.endpoint.requests).toHaveLength(4);
    expect(c.endpoint.requests.every((request) => request.grant.type === 'client_credentials')).toBe(true);
    for (const replica of [a, b]) {
      expect(replica.events('token_state_invalid')).toEqual([]);
      expect(replica.events('credential_dead')).toEqual([]);
    }
    // Each replica called only when it held the lease; between them they made every call once.
    const calls = [a, b].map((replica) => replica.events('token_refreshed').length);
    expect(calls[0]! + calls[1]!).toBe(4);
  });

  it('invalid_client is a verdict: dead with the setting to fix, every replica stops; the same secret after a restart stays dead, a corrected one is tried at once', async () => {
    const c = clientCredentialsCluster();
    const a = await c.replica('a');
    const b = await c.replica('b');
    await c.clock.advance(0);
    c.endpoint.last.fail(invalidClient());
    await c.clock.advanceUntil(() => b.manager.state === 'dead', 5_000);
    expect(a.manager.state).toBe('dead');
    const reason = a.manager.status().reason;
    expect(reason).toMatch(/the token endpoint refused the client credentials \(grant client_credentials\): .*invalid_client/);
    expect(reason).toContain('check auth.clientId and auth.clientSecret (e.g. export API_CLIENT_SECRET=… and restart');
    expect(reason).not.toContain('refresh token');
    expect(a.manager.status().state).toBe('credential_dead');
    const error = (await outcome(a.manager.acquire())) as ProxyError;
    expect(error.code).toBe('CREDENTIAL_DEAD');
    expect(a.events('credential_dead')).toHaveLength(1);
    await c.clock.advance(600_000);
    expect(c.endpoint.requests).toHaveLength(1);

    // A restart with the same wrong secret asks nothing.
    const sameSecret = await c.replica('a-restarted');
    await c.clock.advance(10_000);
    expect(sameSecret.manager.state).toBe('dead');
    expect(c.endpoint.requests).toHaveLength(1);

    // A restart with a corrected secret tries at once, and its token revives the replicas still running.
    const corrected = upstreamConfig([], [], ['preset: oauth2', 'grant: client_credentials', 'clientId: cid', 'clientSecret: cs-2']);
    const fixed = await c.replica('fixed', corrected);
    await c.clock.advance(0);
    expect(c.endpoint.requests).toHaveLength(2);
    c.endpoint.last.succeed();
    await c.clock.advanceUntil(() => a.manager.current() !== undefined && b.manager.current() !== undefined, 5_000);
    expect(fixed.manager.state).toBe('valid');
    expect((await c.store.read(UPSTREAM))?.dead).toBeUndefined();
  });

  it('a 503 from the token endpoint is an outage: retried with backoff, never dead', async () => {
    const { clock, endpoint, replica } = clientCredentialsCluster();
    const a = await replica('a');
    await clock.advance(0);
    endpoint.last.fail(unavailable());
    await clock.advance(0);
    expect(a.manager.state).toBe('unavailable');
    const error = (await outcome(a.manager.acquire())) as ProxyError;
    expect(error.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    expect(error.message).toContain('HTTP 503');

    const gaps: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const before = endpoint.requests.length;
      gaps.push(await clock.advanceUntil(() => endpoint.requests.length > before, 120_000, 50));
      endpoint.last.fail(unavailable());
      await clock.advance(0);
    }
    expect(gaps).toEqual([750, 1500, 3000]); // jitter pinned at the middle: 75% of 1 s, 2 s, 4 s
    expect(a.manager.state).toBe('unavailable');
    expect(a.events('credential_dead')).toEqual([]);

    const before = endpoint.requests.length;
    await clock.advanceUntil(() => endpoint.requests.length > before, 120_000, 50);
    endpoint.last.succeed();
    await clock.advance(0);
    expect(a.manager.state).toBe('valid');
    expect(endpoint.requests.every((request) => request.grant.type === 'client_credentials')).toBe(true);
  });

  it('with the store unreachable it still gets a token without the lock (nothing to spend twice), and stores it once the store is back', async () => {
    const { clock, endpoint, store, replica } = clientCredentialsCluster();
    const a = await replica('a');
    await clock.advance(0);
    endpoint.last.succeed(300_000);
    await clock.advance(0);
    a.link.stall();
    await clock.advanceUntil(() => endpoint.requests.length === 2, 300_000, 100);
    expect(endpoint.last.grant).toEqual(CLIENT_CREDENTIALS);
    expect(a.events('refresh_without_lock')[0]?.msg).toContain('grant client_credentials: nothing to spend twice');
    endpoint.last.succeed(300_000);
    await clock.advance(1_000); // the write times out: the token serves from memory meanwhile
    expect(a.manager.current()?.generation).toBe(2);
    expect(a.manager.status().storeWritePending).toBe(true);
    a.link.restore();
    await clock.advanceUntil(() => a.manager.status().storeWritePending === undefined, 10_000);
    expect((await store.read(UPSTREAM))?.generation).toBe(2);
    expect(endpoint.requests).toHaveLength(2);
  });

  it.each([
    { mark: 'expired', sinceAgoMs: 200_000, expiresInMs: -80_000 },
    { mark: 'live', sinceAgoMs: 1_000, expiresInMs: 119_000 },
  ])(
    'an $mark in-flight mark left from refresh-token days neither blocks nor is reported as a spent token',
    async ({ sinceAgoMs, expiresInMs }) => {
      const c = clientCredentialsCluster();
      const now = c.clock.now();
      await c.store.compareAndSet(UPSTREAM, 0, {
        generation: 3,
        refreshToken: 'rt-old',
        obtainedAt: now - 300_000,
        source: 'refresh',
        writer: 'gone',
        refreshInFlight: {
          since: now - sinceAgoMs,
          expiresAt: now + expiresInMs,
          owner: 'gone',
          refreshTokenFingerprint: fingerprint('rt-old') ?? '',
        },
      });
      const a = await c.replica('a');
      await c.clock.advance(0);
      expect(c.endpoint.requests).toHaveLength(1);
      expect(c.endpoint.last.grant).toEqual(CLIENT_CREDENTIALS);
      c.endpoint.last.succeed();
      await c.clock.advance(0);
      expect(a.manager.current()?.generation).toBe(4);
      const stored = (await c.store.read(UPSTREAM)) as TokenRecord;
      expect(stored.refreshInFlight).toBeUndefined();
      expect(stored.refreshToken).toBeUndefined();
      expect(a.events('refresh_in_flight_found')).toEqual([]);
      expect(a.events('refresh_blocked')).toEqual([]);
    },
  );

  it('a dead verdict on a refresh token (from before the grant changed) does not write off the client credentials', async () => {
    const c = clientCredentialsCluster();
    const now = c.clock.now();
    await c.store.compareAndSet(UPSTREAM, 0, {
      generation: 5,
      obtainedAt: now - 300_000,
      source: 'refresh',
      writer: 'gone',
      seedFingerprint: fingerprint('rt-seed'),
      dead: { at: now - 60_000, reason: 'the refresh token was rejected: token endpoint answered HTTP 400 (invalid_grant)' },
    });
    const a = await c.replica('a');
    await c.clock.advance(0);
    expect(c.endpoint.requests).toHaveLength(1);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    expect(a.manager.state).toBe('valid');
    expect(a.manager.current()?.generation).toBe(6);
    expect((await c.store.read(UPSTREAM))?.dead).toBeUndefined();
    expect(a.events('credential_dead')).toEqual([]);
  });
});
