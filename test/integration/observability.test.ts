/**
 * Logs, metrics and the admin listener: access and refresh log lines, no secret in any
 * log line, admin answer or error body, /status and /metrics contents, and no store round-trip on the
 * request path.
 */
import { describe, expect, it } from 'vitest';
import { configYaml, eventually, startProxy } from '../helpers/start-proxy.js';
import { fingerprint } from '../../src/tokens/fingerprint.js';
import {
  CLIENT_SECRET,
  MEMORY_TOP,
  accessLines,
  metricsText,
  provider,
  readyz,
  sample,
  setup,
  statusOf,
  upstreamYaml,
} from './token-fixtures.js';

describe('logs', () => {
  it('one access line per request with the chosen fields, and refresh events with outcome and latency', async () => {
    const { fake, proxy, call } = await setup('collaborate');
    expect((await call('/3/sites?page=2&sig=query-secret', { headers: { 'x-request-id': 'client-req-42' } })).status).toBe(200);
    // A rejection whose refresh meets a 503: the client gets a 503 it may retry (not the stale rejection);
    // the proxy's own retry succeeds later.
    fake.failNextTokenCalls(1, 503);
    fake.setApiBehaviour('reject-once');
    expect((await call('/3/users')).status).toBe(503);
    await eventually(
      () => proxy.logs.some((line) => line.event === 'token_refreshed' && line.reason === 'retry'),
      3000,
      'the retry to succeed',
    );
    fake.expireAccessTokens();
    expect((await call('/3/files', { method: 'POST', body: 'abc' })).status).toBe(200);
    await eventually(() => accessLines(proxy).length === 3, 2000, 'three access lines');

    const [first, second, third] = accessLines(proxy);
    expect(first).toMatchObject({
      reqId: 'client-req-42',
      upstream: 'collaborate',
      method: 'GET',
      path: '/collaborate/3/sites',
      status: 200,
      replayed: false,
      generation: 2,
    });
    expect(typeof first?.durationMs).toBe('number');
    expect(JSON.stringify(first)).not.toContain('query-secret');
    expect(second).toMatchObject({
      path: '/collaborate/3/users',
      status: 503,
      error: 'TOKEN_ENDPOINT_UNAVAILABLE',
      replayed: false,
      generation: 2,
    });
    expect(third).toMatchObject({
      upstream: 'collaborate',
      method: 'POST',
      path: '/collaborate/3/files',
      status: 200,
      replayed: true,
      generation: 4,
    });
    expect(third?.reqId).toMatch(/^[0-9a-f-]{36}$/);
    // The generated request id went upstream too.
    expect(fake.apiRequests.at(-1)?.headers['x-request-id']).toBe(third?.reqId);

    const refreshEvents = proxy.logs.filter((line) =>
      ['token_refreshed', 'refresh_failed', 'credential_dead'].includes(String(line.event)),
    );
    expect(refreshEvents.map((line) => [line.event, line.outcome, line.reason])).toEqual([
      ['token_refreshed', 'success', 'startup'],
      ['refresh_failed', 'transient_error', 'rejected'],
      ['token_refreshed', 'success', 'retry'],
      ['token_refreshed', 'success', 'rejected'],
    ]);
    for (const line of refreshEvents) {
      expect(typeof line.latencyMs).toBe('number');
      expect(line.upstream).toBe('collaborate');
    }
    // Tokens appear as fingerprints only, under field names the redaction net leaves readable.
    for (const line of refreshEvents.filter((event) => event.event === 'token_refreshed')) {
      expect(line.accessTokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
      expect(line.refreshTokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
    }
    const dead = await setup('apiax', { seed: 'apiax-rt-never-issued-0000' });
    await eventually(() => dead.proxy.logs.some((line) => line.event === 'credential_dead'), 3000, 'the dead credential to be logged');
    expect(dead.proxy.logs.find((line) => line.event === 'credential_dead')).toMatchObject({
      outcome: 'credential_dead',
      reason: 'startup',
      latencyMs: expect.any(Number),
    });
  });

  it('no token, refresh token, client secret, seed, Authorization or Cookie value in logs, admin answers or error bodies', async () => {
    const collaborate = await provider({ kind: 'collaborate' });
    const apiax = await provider({ kind: 'apiax' });
    const collaborateSeed = collaborate.issueRefreshToken();
    const apiaxSeed = apiax.issueRefreshToken();
    // A token endpoint that echoes the refresh token it was sent in its error description.
    apiax.failNextTokenCalls(1, 400, JSON.stringify({ error: 'invalid_grant', error_description: `Token ${apiaxSeed} is not active` }));
    const yaml = configYaml(
      `${upstreamYaml(collaborate, { seed: collaborateSeed })}\n${upstreamYaml(apiax, { seed: apiaxSeed })}`,
      MEMORY_TOP,
    );
    const proxy = await startProxy(yaml);

    const clientAuthorization = 'Bearer client-own-token-9f8e7d';
    const clientCookie = 'session=client-cookie-6a5b4c';
    const headers = {
      authorization: clientAuthorization,
      cookie: clientCookie,
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      accept: 'application/json',
    };
    const bodies: string[] = [];
    const send = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${proxy.url}${path}`, { ...init, headers });
      bodies.push(await response.text());
      return response.status;
    };

    expect(await send('/collaborate/3/sites')).toBe(200);
    collaborate.expireAccessTokens();
    expect(await send('/collaborate/3/sites', { method: 'POST', body: 'x' })).toBe(200); // rotation + replay
    await eventually(async () => (await readyz(proxy)).body.notReady.apiax?.state === 'credential_dead', 3000, 'apiax to be dead');
    expect(await send('/apiax/x')).toBe(503);
    expect(await send('/nowhere')).toBe(404);
    expect(await send('/collaborate/a%2f..%2fetc')).toBe(400);

    for (const path of ['/status', '/metrics', '/readyz', '/healthz', '/nothing'])
      bodies.push(await (await fetch(`${proxy.adminUrl}${path}`)).text());
    // The cookie did reach the upstream (it is the app's own business), so the checks below are not vacuous.
    expect(collaborate.apiRequests[0]?.headers.cookie).toBe(clientCookie);
    expect(bodies.join('\n')).toContain('a new refresh token is needed');
    await eventually(() => accessLines(proxy).length === 5, 2000, 'every access line');

    const secrets = [
      ...collaborate.issuedTokens,
      ...apiax.issuedTokens,
      collaborateSeed,
      apiaxSeed,
      CLIENT_SECRET,
      'client-own-token-9f8e7d',
      'client-cookie-6a5b4c',
      'cHJveHk6c2VjcmV0',
    ];
    expect(collaborate.issuedTokens.length).toBeGreaterThanOrEqual(5);
    const everything = `${proxy.rawLogs()}\n${bodies.join('\n')}`;
    const leaked = secrets.filter((secret) => everything.includes(secret));
    expect(leaked).toEqual([]);
    expect(proxy.rawLogs()).toContain('[redacted]'); // the echoed seed was cut out of the provider's message
  });
});

describe('admin listener', () => {
  it('/healthz, /status with fingerprints only, and /metrics with plausible values', async () => {
    const { fake, proxy, call } = await setup('v3', { providerOptions: { accessTokenLifetimeSeconds: 600 } });
    for (let i = 0; i < 3; i++) expect((await call(`/3/accounts/${i}`)).status).toBe(200);
    fake.expireAccessTokens();
    expect((await call('/3/accounts/replayed')).status).toBe(200);
    expect((await call('/a%2f..%2fx')).status).toBe(400);

    const health = await fetch(`${proxy.adminUrl}/healthz`);
    expect(health.status).toBe(200);

    const statusText = await (await fetch(`${proxy.adminUrl}/status`)).text();
    const status = await statusOf(proxy, 'v3');
    const accessTokens = fake.issuedTokens.filter((token) => token.startsWith('v3-at-'));
    const refreshTokens = fake.issuedTokens.filter((token) => token.startsWith('v3-rt-'));
    expect(status.state).toBe('ok');
    expect(status.generation).toBe(3); // seed, first token, the refresh after the rejection
    expect(status.expiresInSeconds).toBeGreaterThan(500);
    expect(status.expiresInSeconds).toBeLessThanOrEqual(600);
    expect(status.accessTokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(status.accessTokenFingerprint).toBe(fingerprint(accessTokens.at(-1)));
    expect(status.refreshTokenFingerprint).toBe(fingerprint(refreshTokens.at(-1)));
    expect(status.lastRefresh).toMatchObject({ outcome: 'success', reason: 'rejected' });
    expect(Date.parse(status.lastRefresh?.at ?? '')).toBeGreaterThan(Date.now() - 60_000);
    for (const token of fake.issuedTokens) expect(statusText).not.toContain(token);

    const metrics = await metricsText(proxy);
    expect(sample(metrics, 'oauth_sidecar_requests_total', { upstream: 'v3', status: '200' })).toBe(4);
    expect(sample(metrics, 'oauth_sidecar_upstream_duration_seconds_count', { upstream: 'v3' })).toBe(5); // 4 requests + 1 replay
    expect(sample(metrics, 'oauth_sidecar_upstream_duration_seconds_sum', { upstream: 'v3' })).toBeGreaterThan(0);
    expect(sample(metrics, 'oauth_sidecar_replays_total', { upstream: 'v3', outcome: 'accepted' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_token_refreshes_total', { upstream: 'v3', outcome: 'success' })).toBe(2);
    expect(sample(metrics, 'oauth_sidecar_token_refreshes_total', { upstream: 'v3', outcome: 'success', reason: 'rejected' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_token_refresh_duration_seconds_count', { upstream: 'v3' })).toBe(2);
    const expiresIn = sample(metrics, 'oauth_sidecar_token_expires_in_seconds', { upstream: 'v3' });
    expect(expiresIn).toBeGreaterThan(500);
    expect(expiresIn).toBeLessThanOrEqual(600);
    expect(sample(metrics, 'oauth_sidecar_credential_dead', { upstream: 'v3' })).toBe(0);
  });

  it('proxied requests make no store operations once a token is held', async () => {
    const { proxy, call } = await setup('apiax');
    expect((await call('/warm')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the refresh's follow-up store reads settle
    const before = sample(await metricsText(proxy), 'oauth_sidecar_store_operations_total');
    expect(before).toBeGreaterThan(0); // the counter does count: the seed and the first refresh went through the store

    for (let i = 0; i < 50; i++)
      expect((await call(`/steady/${i}`, { method: i % 2 ? 'GET' : 'POST', body: i % 2 ? null : 'x' })).status).toBe(200);
    expect(sample(await metricsText(proxy), 'oauth_sidecar_store_operations_total')).toBe(before);
  });
});
