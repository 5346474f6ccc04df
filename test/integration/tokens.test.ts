/**
 * Tokens through the real proxy and the fake providers: each preset's token
 * request on the wire, rotation, early refresh on the clock, transient token endpoint failures.
 * (Dead credentials: credential.test.ts.)
 */
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { refusingPort } from '../helpers/ports.js';
import type { FakeProviderOptions, ProviderKind } from '../helpers/fake-provider.js';
import { configYaml, eventually, startProxy } from '../helpers/start-proxy.js';
import { fingerprint } from '../../src/tokens/fingerprint.js';
import { CLIENT_SECRET, MEMORY_TOP, bearersSeen, provider, readyz, setup, statusOf, tokenForms, upstreamYaml } from './token-fixtures.js';

interface PresetCase {
  label: string;
  kind: ProviderKind;
  options: Omit<FakeProviderOptions, 'kind'>;
}

const presetCases: PresetCase[] = [
  { label: 'collaborate, JSON body, expires_in as a number', kind: 'collaborate', options: { format: 'json', expiresInAs: 'number' } },
  {
    label: 'collaborate, XML body, expires_in as a numeric string',
    kind: 'collaborate',
    options: { format: 'xml', expiresInAs: 'string' },
  },
  { label: 'apiax, expires_in as an epoch in seconds', kind: 'apiax', options: { expiresInAs: 'epoch-seconds' } },
  { label: 'apiax, expires_in as an epoch in milliseconds', kind: 'apiax', options: { expiresInAs: 'epoch-ms' } },
  { label: 'v3, flat body, expires_in as a number', kind: 'v3', options: {} },
  { label: 'v3, wrapped body, expires_in as a numeric string', kind: 'v3', options: { wrapped: true, expiresInAs: 'string' } },
];

const refreshTokensIssued = (issued: readonly string[], kind: ProviderKind) => issued.filter((token) => token.startsWith(`${kind}-rt-`));

describe('presets: the first token comes from the seed, and every rotated refresh token replaces the spent one', () => {
  for (const { label, kind, options } of presetCases) {
    it(label, async () => {
      const { fake, proxy, seed, call } = await setup(kind, { providerOptions: { accessTokenLifetimeSeconds: 3600, ...options } });

      const first = await call('/3/sites?page=1');
      expect(first.status).toBe(200);
      expect(fake.counters.tokenCalls).toBe(1);

      // The refresh request on the wire.
      const [wire] = fake.tokenRequests;
      const [form] = tokenForms(fake);
      expect(wire?.method).toBe('POST');
      expect(wire?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      expect(form?.get('grant_type')).toBe('refresh_token');
      expect(form?.get('refresh_token')).toBe(seed);
      if (kind === 'collaborate') {
        expect(form?.get('client_id')).toBe('client-id');
        expect(form?.get('client_secret')).toBe(CLIENT_SECRET);
        expect(wire?.headers.authorization).toBeUndefined();
      }
      if (kind === 'apiax') {
        expect(form?.get('client_id')).toBe('integration-api');
        expect(form?.has('client_secret')).toBe(false);
        expect(wire?.headers.authorization).toBeUndefined();
      }
      if (kind === 'v3') {
        expect(wire?.headers['x-ibm-client-id']).toBe('client-id');
        expect(wire?.headers['x-ibm-client-secret']).toBe(CLIENT_SECRET);
        expect(form?.has('client_id')).toBe(false);
        expect(form?.has('client_secret')).toBe(false);
      }

      // The bearer token sent upstream is the access token the provider issued, and its expiry was read right.
      const firstAccess = fake.issuedTokens.find((token) => token.startsWith(`${kind}-at-`));
      expect(bearersSeen(fake)).toEqual([`Bearer ${firstAccess}`]);
      const afterFirst = await statusOf(proxy, kind);
      expect(afterFirst.expiresInSeconds).toBeGreaterThan(3500);
      expect(afterFirst.expiresInSeconds).toBeLessThanOrEqual(3600);

      // A rejection forces the next refresh: it must present the rotated refresh token, never the seed.
      fake.expireAccessTokens();
      expect((await call('/3/sites')).status).toBe(200);
      expect(fake.counters.tokenCalls).toBe(2);
      const rotated = refreshTokensIssued(fake.issuedTokens, kind);
      expect(rotated).toHaveLength(3); // seed, first rotation, second rotation
      expect(tokenForms(fake)[1]?.get('refresh_token')).toBe(rotated[1]);
      expect(fake.counters.reuseAttempts).toBe(0);
      expect(fake.counters.refreshGrants).toBe(2);

      // The newest refresh token is the one held now.
      const afterSecond = await statusOf(proxy, kind);
      expect(afterSecond.refreshTokenFingerprint).toBe(fingerprint(rotated[2]));
      expect(afterSecond.generation).toBe(afterFirst.generation + 1);
    });
  }
});

describe('early refresh on the clock', () => {
  it('refreshes before expiry without any request, and requests during the refresh go out with the old token at once', async () => {
    const { fake, proxy, call } = await setup('apiax', { providerOptions: { accessTokenLifetimeSeconds: 3 } });
    expect((await call('/warm')).status).toBe(200);
    const first = await statusOf(proxy, 'apiax');
    const firstExpiresAt = Date.parse(first.obtainedAt ?? '') + 3000;
    const firstBearer = bearersSeen(fake)[0];

    // Hold the next token answer back so the scheduled refresh stays in flight for a while.
    fake.setTokenDelay(1200);
    await eventually(() => fake.counters.tokenCalls === 2, 4000, 'the scheduled refresh to start');
    expect(Date.now()).toBeLessThan(firstExpiresAt);
    expect(fake.counters.refreshGrants).toBe(1);

    const during = await Promise.all([call('/during/1'), call('/during/2'), call('/during/3')]);
    expect(during.map((response) => response.status)).toEqual([200, 200, 200]);
    // Every request was answered while the token request was still unanswered: none waited for it.
    expect(fake.counters.refreshGrants).toBe(1);
    expect(bearersSeen(fake).slice(1)).toEqual([firstBearer, firstBearer, firstBearer]);

    await eventually(() => fake.counters.refreshGrants === 2, 4000, 'the scheduled refresh to finish');
    await eventually(async () => (await statusOf(proxy, 'apiax')).generation === first.generation + 1, 2000, 'the new generation');
    const refreshed = await statusOf(proxy, 'apiax');
    expect(refreshed.lastRefresh).toMatchObject({ outcome: 'success', reason: 'scheduled' });
    expect((await call('/after')).status).toBe(200);
    expect(bearersSeen(fake).at(-1)).not.toBe(firstBearer);
    expect(fake.counters.reuseAttempts).toBe(0);
  });
});

describe('transient token endpoint failures', () => {
  it('keep the current token, retry with backoff and recover by themselves', async () => {
    const { fake, proxy, call } = await setup('v3');
    expect((await call('/warm')).status).toBe(200);
    const held = await statusOf(proxy, 'v3');
    const heldBearer = bearersSeen(fake)[0];

    // The upstream refuses the (still unexpired) token once: the refresh this triggers meets a 503, twice.
    fake.failNextTokenCalls(2, 503);
    fake.setApiBehaviour('reject-once');
    const rejected = await call('/rejected');
    // No newer token to replay with, because the token endpoint is failing: a clear 503 the client may
    // retry, never the stale 401 after the proxy tried.
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await rejected.json()) as { error: { code: string } }).error.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    await eventually(async () => (await statusOf(proxy, 'v3')).lastRefresh?.outcome === 'transient_error', 3000, 'a failed refresh');

    // Meanwhile the current token stays in use, and the proxy stays ready.
    const meanwhile = await call('/meanwhile');
    expect(meanwhile.status).toBe(200);
    expect(bearersSeen(fake).at(-1)).toBe(heldBearer);
    expect((await readyz(proxy)).status).toBe(200);

    // Two failures, then a retry that succeeds without any request asking for it.
    await eventually(() => fake.counters.refreshGrants === 2, 8000, 'the retry to succeed');
    expect(fake.counters.tokenCalls).toBe(4);
    expect(fake.counters.reuseAttempts).toBe(0);
    await eventually(async () => (await statusOf(proxy, 'v3')).generation === held.generation + 1, 2000, 'the new generation');
    const failures = proxy.logs.filter((line) => line.event === 'refresh_failed');
    expect(failures).toHaveLength(2);
    for (const line of failures) expect(line.retryInMs).toBeGreaterThan(0);
    expect((await statusOf(proxy, 'v3')).lastRefresh).toMatchObject({ outcome: 'success', reason: 'retry' });
    expect((await call('/after')).status).toBe(200);
  });

  it('rejections during a token endpoint outage do not hammer it: refreshes follow the backoff', async () => {
    const { fake, proxy, call } = await setup('collaborate');
    expect((await call('/warm')).status).toBe(200);
    fake.failNextTokenCalls(1000, 503);
    fake.expireAccessTokens(); // the upstream now rejects the token the proxy still believes in

    for (let i = 0; i < 10; i++) {
      const response = await call(`/during-outage/${i}`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    // The first rejection tried once; the next ones fall within its backoff (at least 500 ms) and wait for it.
    const failed = fake.counters.tokenCalls - 1;
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(failed).toBeLessThanOrEqual(2);
    expect(proxy.logs.filter((line) => line.event === 'refresh_failed').length).toBe(failed);
  });

  it('a token endpoint failing at start does not stop the proxy: /readyz says why, then recovers', async () => {
    const fake = await provider({ kind: 'collaborate' });
    fake.failNextTokenCalls(2, 503);
    const proxy = await startProxy(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken() }), MEMORY_TOP));

    await eventually(
      async () => (await readyz(proxy)).body.notReady.collaborate?.reason?.includes('503') === true,
      3000,
      'readyz to name the 503',
    );
    const notReady = await readyz(proxy);
    expect(notReady.status).toBe(503);
    expect(notReady.body.ready).toBe(false);

    await eventually(async () => (await readyz(proxy)).status === 200, 8000, 'readyz to recover');
    expect((await fetch(`${proxy.url}/collaborate/3/sites`, { headers: { accept: 'application/json' } })).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(3);
    expect(fake.counters.reuseAttempts).toBe(0);
  });

  it('a token endpoint that refuses connections at start: the proxy starts, answers 503, and recovers once it is reachable', async () => {
    const fake = await provider({ kind: 'apiax' });
    const refusing = await refusingPort();
    const port = refusing.port;
    const tokenUrl = fake.tokenUrl.replace(/:\d+\//, `:${port}/`);
    const proxy = await startProxy(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken(), tokenUrl }), MEMORY_TOP));

    await eventually(
      async () => (await readyz(proxy)).body.notReady.apiax?.reason?.includes('ECONNREFUSED') === true,
      3000,
      'readyz to name the refused connection',
    );
    const refused = await fetch(`${proxy.url}/apiax/x`);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');

    // The token endpoint comes up on that port (a TCP relay to the fake provider).
    await refusing.release();
    const relay = await tcpRelay(port, Number(new URL(fake.origin).port));
    onTestFinished(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    await eventually(async () => (await readyz(proxy)).status === 200, 10_000, 'readyz to recover');
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    expect(fake.counters.reuseAttempts).toBe(0);
  });
});

function tcpRelay(port: number, targetPort: number): Promise<TcpServer> {
  const server = createTcpServer((socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
