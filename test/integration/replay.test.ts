/**
 * Replays through the real proxy: a rejected token is refreshed (single-flight,
 * generation-checked) and the request replayed exactly once with identical bytes; streamed or large
 * bodies are not replayed; a 403 for other reasons is bounded.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../helpers/fake-provider.js';
import { eventually } from '../helpers/start-proxy.js';
import { bearersSeen, metricsText, rawRequest, sample, setup, statusOf } from './token-fixtures.js';

/** The recorded request's headers without the one the proxy is supposed to change. */
function withoutAuthorization(req: RecordedRequest | undefined): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...req?.headers };
  delete rest.authorization;
  return rest;
}

describe('rejection, refresh, replay', () => {
  it('collaborate 403 on an expired token: refreshes once and replays; the client sees 200', async () => {
    const { fake, proxy, call } = await setup('collaborate');
    expect((await call('/3/sites')).status).toBe(200);
    fake.expireAccessTokens();

    const response = await call('/3/sites?limit=5');
    expect(response.status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
    expect(fake.counters.apiRejections).toBe(1);
    const [rejected, replayed] = fake.apiRequests.slice(1);
    expect(rejected?.url).toBe('/acme/api/3/sites?limit=5');
    expect(replayed?.url).toBe('/acme/api/3/sites?limit=5');
    expect(replayed?.headers.authorization).not.toBe(rejected?.headers.authorization);
    expect(replayed?.headers.authorization).toBe(`Bearer ${fake.issuedTokens.filter((t) => t.startsWith('collaborate-at-'))[1]}`);

    const line = proxy.logs.filter((l) => l.msg === 'request').at(-1);
    expect(line).toMatchObject({ status: 200, replayed: true });
    expect(sample(await metricsText(proxy), 'oauth_sidecar_replays_total', { upstream: 'collaborate', outcome: 'accepted' })).toBe(1);
  });

  it('a POST body of 100 KiB random bytes is replayed byte-identical, with the same method, path, query and headers', async () => {
    const { fake, call } = await setup('apiax');
    expect((await call('/warm')).status).toBe(200);
    fake.expireAccessTokens();

    const body = randomBytes(100 * 1024);
    const response = await call('/upload/file.bin?version=2&x=%2Fy', {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/octet-stream',
        'x-custom': 'kept',
        'x-request-id': 'replay-1',
        authorization: 'Bearer client-own',
      },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { bodyLength: number }).bodyLength).toBe(body.length);

    const [rejected, replayed] = fake.apiRequests.slice(1);
    expect(fake.apiRequests).toHaveLength(3);
    expect(rejected?.body.equals(body)).toBe(true);
    expect(replayed?.body.equals(body)).toBe(true);
    expect(replayed?.method).toBe('POST');
    expect(replayed?.url).toBe(rejected?.url);
    expect(replayed?.url).toBe('/api/upload/file.bin?version=2&x=%2Fy');
    expect(withoutAuthorization(replayed)).toEqual(withoutAuthorization(rejected));
    expect(replayed?.headers['x-custom']).toBe('kept');
    expect(replayed?.headers['x-request-id']).toBe('replay-1');
    expect(replayed?.headers.authorization).not.toBe(rejected?.headers.authorization);
    expect(replayed?.headers.authorization).not.toContain('client-own');
    expect(fake.counters.tokenCalls).toBe(2);
  });

  it('a body over maxReplayBodyBytes is not replayed: the client gets the rejection, the next request succeeds', async () => {
    const { fake, proxy, call } = await setup('collaborate', { upstream: 'maxReplayBodyBytes: 1024' });
    expect((await call('/warm')).status).toBe(200);
    fake.expireAccessTokens();

    const body = randomBytes(4096);
    const response = await call('/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(response.status).toBe(403);
    expect(await response.text()).toBe('Access denied');
    expect(fake.apiRequests.filter((req) => req.body.length === body.length)).toHaveLength(1);

    // The rejection still triggered a refresh.
    await eventually(() => fake.counters.tokenCalls === 2, 3000, 'the refresh triggered by the rejection');
    expect((await call('/next')).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
    expect(proxy.logs.filter((l) => l.msg === 'request').at(-2)).toMatchObject({ status: 403, replayed: false });
  });

  it('a chunked body of unknown length is not replayed: the client gets the rejection, the next request succeeds', async () => {
    const { fake, proxy } = await setup('v3');
    expect((await fetch(`${proxy.url}/v3/warm`)).status).toBe(200);
    fake.expireAccessTokens();

    const body = randomBytes(2048);
    const response = await rawRequest(`${proxy.url}/v3/upload`, {
      method: 'PUT',
      body,
      chunked: true,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ error: { failures: [{ code: 'error.token.expired' }] } });
    const uploads = fake.apiRequests.filter((req) => req.url === '/v3/api/upload');
    expect(uploads).toHaveLength(1);
    expect(uploads[0]?.body.equals(body)).toBe(true);

    await eventually(() => fake.counters.tokenCalls === 2, 3000, 'the refresh triggered by the rejection');
    expect((await fetch(`${proxy.url}/v3/next`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
  });

  it('a 403 for other reasons is bounded: 20 requests cause at most one refresh, each client gets the 403 untouched', async () => {
    const { fake, proxy, call } = await setup('collaborate');
    expect((await call('/warm')).status).toBe(200);
    const callsBefore = fake.counters.tokenCalls;
    fake.setApiBehaviour('always-reject');

    for (let i = 0; i < 20; i++) {
      const response = await call(`/forbidden/${i}`);
      expect(response.status).toBe(403);
      expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await response.text()).toBe('Access denied');
    }
    expect(fake.counters.tokenCalls - callsBefore).toBeLessThanOrEqual(1);
    // One replay at most, too: 20 requests reached the upstream at most 21 times.
    expect(fake.apiRequests.length - 1).toBeLessThanOrEqual(21);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect((await statusOf(proxy, 'collaborate')).state).toBe('ok');
  });

  it('100 concurrent requests at expiry cause exactly one token call', async () => {
    const { fake, call } = await setup('collaborate');
    expect((await call('/warm')).status).toBe(200);
    fake.expireAccessTokens();

    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => call(`/3/sites/${i}`)));
    expect(responses.map((response) => response.status)).toEqual(Array.from({ length: 100 }, () => 200));
    await Promise.all(responses.map((response) => response.arrayBuffer()));
    expect(fake.counters.tokenCalls).toBe(2);
    expect(fake.counters.reuseAttempts).toBe(0);
    const newBearer = `Bearer ${fake.issuedTokens.filter((t) => t.startsWith('collaborate-at-'))[1]}`;
    // Every request was eventually answered with the one new token.
    const successful = fake.apiRequests.slice(1).filter((req) => req.headers.authorization === newBearer);
    expect(new Set(successful.map((req) => req.url)).size).toBe(100);
  });

  it('a rejection of an older generation, after a newer token exists, replays with the newer token without another refresh', async () => {
    const { fake, proxy, call } = await setup('apiax');
    expect((await call('/warm')).status).toBe(200);
    const firstGeneration = (await statusOf(proxy, 'apiax')).generation;

    // /slow is held by the upstream until released, then refused (as if its token had just expired);
    // its replay is accepted. Everything else gets a plain 200.
    let releaseSlow: () => void = () => {};
    const released = new Promise<void>((resolve) => (releaseSlow = resolve));
    let slowCalls = 0;
    fake.setApiHandler((req: RecordedRequest, res: ServerResponse) => {
      if (!req.url.endsWith('/slow')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      slowCalls += 1;
      if (slowCalls > 1) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('slow ok');
      void released.then(() =>
        res
          .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' })
          .end('{"error":"invalid_token"}'),
      );
    });

    const slow = call('/slow');
    await eventually(() => slowCalls === 1, 3000, 'the slow request to reach the upstream');

    // Another request meets the expired token and brings a newer generation.
    fake.expireAccessTokens();
    expect((await call('/other')).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
    expect((await statusOf(proxy, 'apiax')).generation).toBe(firstGeneration + 1);

    releaseSlow();
    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('slow ok');
    expect(fake.counters.tokenCalls).toBe(2);
    const slowBearers = fake.apiRequests.filter((req) => req.url.endsWith('/slow')).map((req) => req.headers.authorization);
    const accessTokens = fake.issuedTokens.filter((t) => t.startsWith('apiax-at-'));
    expect(slowBearers).toEqual([`Bearer ${accessTokens[0]}`, `Bearer ${accessTokens[1]}`]);
    expect(bearersSeen(fake)).toHaveLength(5); // warm, slow, other (rejected), other (replayed), slow (replayed)
  });
});
