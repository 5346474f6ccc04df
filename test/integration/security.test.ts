/**
 * Issue behaviours 2 and 3 and the error contract: the client's credentials never reach the upstream,
 * the proxy is not an open proxy (no foreign absolute-form, no CONNECT, no path escaping the route),
 * errors the proxy produces are {"error":{"code","message","requestId"}} without secrets, and upstream
 * errors pass through untouched. Request lines are written on raw sockets where clients would normalise.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { closedPort, startRoutedProxy } from '../helpers/plain-upstream.js';
import { headerValues, proxyError, rawExchange, send, type RawResponse } from '../helpers/raw-http.js';
import { configYaml, startProxy } from '../helpers/start-proxy.js';

function expectRefused(res: RawResponse, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const error = proxyError(res.body);
  expect(error.code).toBe(code);
  expect(res.headers['x-request-id']).toBe(error.requestId);
}

describe('client credentials are stripped', () => {
  it('forwards exactly one Authorization, the proxy bearer, and none of the client credentials', async () => {
    const { routeUrl, upstream, provider } = await startRoutedProxy({ extra: 'stripHeaders: [X-Api-Key, x-legacy-token]' });
    const res = await send(`${routeUrl}/me`, {
      headers: [
        'Authorization',
        'Basic Y2xpZW50OnNlY3JldA==',
        'authorization',
        'Bearer client-second-token',
        'Proxy-Authorization',
        'Basic cHJveHk6c2VjcmV0',
        'x-API-key',
        'client-api-key',
        'X-LEGACY-TOKEN',
        'client-legacy-token',
        'X-Kept',
        'kept',
      ],
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests.at(-1);
    const raw = seen?.rawHeaders ?? [];
    const authorization = headerValues(raw, 'authorization');
    expect(authorization).toHaveLength(1);
    expect(authorization[0]).toMatch(/^Bearer [A-Za-z0-9._~+/-]+=*$/);
    expect(provider.issuedTokens).toContain(authorization[0]?.slice('Bearer '.length));
    for (const name of ['proxy-authorization', 'x-api-key', 'x-legacy-token']) expect(headerValues(raw, name)).toEqual([]);
    expect(raw.join('\n')).not.toMatch(/client-|Y2xpZW50|cHJveHk/);
    expect(seen?.headers['x-kept']).toBe('kept');
  });

  it('strips the same headers on a streamed (chunked, unreplayable) body', async () => {
    const { routeUrl, upstream } = await startRoutedProxy({ extra: 'stripHeaders: [X-Api-Key]' });
    const res = await send(`${routeUrl}/stream`, {
      method: 'POST',
      headers: { authorization: 'Bearer client-token', 'x-api-key': 'client-api-key', 'transfer-encoding': 'chunked' },
      body: 'streamed',
    });
    expect(res.status).toBe(200);
    const raw = upstream.requests.at(-1)?.rawHeaders ?? [];
    expect(headerValues(raw, 'authorization')).toHaveLength(1);
    expect(raw.join('\n')).not.toContain('client-');
  });
});

describe('not an open proxy: request targets', () => {
  it('refuses absolute-form for another host and sends nothing upstream', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    const self = new URL(proxy.url).host;
    for (const [target, host] of [
      ['http://evil.example/up/x', 'evil.example'],
      ['http://evil.example/up/x', self],
      ['https://evil.example/up/x', 'evil.example'],
      [`http://evil.example:${new URL(proxy.url).port}/up/x`, `evil.example:${new URL(proxy.url).port}`],
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ]) {
      expectRefused(
        await rawExchange(proxy.url, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
        400,
        'BAD_REQUEST_TARGET',
      );
    }
    expect(upstream.requests).toEqual([]);
  });

  it('accepts absolute-form that names the proxy itself', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    const self = new URL(proxy.url).host;
    const res = await rawExchange(proxy.url, `GET http://${self}/up/x?q=1 HTTP/1.1\r\nHost: ${self}\r\nConnection: close\r\n\r\n`);
    expect(res.status, res.text).toBe(200);
    const named = `localhost:${new URL(proxy.url).port}`;
    const byName = await rawExchange(
      proxy.url,
      `GET HTTP://LOCALHOST:${new URL(proxy.url).port}/up/y HTTP/1.1\r\nHost: ${named}\r\nConnection: close\r\n\r\n`,
    );
    expect(byName.status, byName.text).toBe(200);
    expect(upstream.requests.map((request) => request.url)).toEqual(['/base/x?q=1', '/base/y']);
  });

  it('refuses CONNECT, asterisk-form and TRACE, and sends nothing upstream', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    expectRefused(
      await rawExchange(proxy.url, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n'),
      400,
      'BAD_REQUEST_TARGET',
    );
    expectRefused(await rawExchange(proxy.url, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400, 'BAD_REQUEST_TARGET');
    expectRefused(await rawExchange(proxy.url, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400, 'BAD_REQUEST_TARGET');
    // TRACE would echo the attached bearer token back to the client.
    expectRefused(await rawExchange(proxy.url, 'TRACE /up/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 405, 'METHOD_NOT_ALLOWED');
    expect(upstream.requests).toEqual([]);
  });

  it('refuses an upgrade to anything but WebSocket (h2c) with 501 and does not forward it', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    const res = await rawExchange(
      proxy.url,
      'GET /up/socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    );
    expectRefused(res, 501, 'NOT_SUPPORTED');
    expect(upstream.requests).toEqual([]);
  });
});

describe('not an open proxy: paths cannot escape the route', () => {
  const escapes = [
    '/up/../x',
    '/up/..',
    '/up/x/../../y',
    '/up/%2e%2e/x',
    '/up/%2E%2e/x',
    '/up/.%2e/x',
    '/up/%2e./x',
    '/up/./x',
    '/up/%2e/x',
    '/up/a%2fb',
    '/up/a%2Fb',
    '/up/a%5cb',
    '/up/a%5Cb',
    '/up/a\\b',
    '/up/..\\x',
    '/up/a%00b',
    '/up/..;/x',
    '/up/..;jsessionid=1/x',
    '/up/%2e%2e%3b/x',
  ];

  it('refuses dot segments, encoded slashes and backslashes with 400 and sends nothing upstream', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    for (const path of escapes) {
      const res = await rawExchange(proxy.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(res.status, path).toBe(400);
      expect(proxyError(res.body).code, path).toBe('BAD_REQUEST_TARGET');
    }
    expect(upstream.requests).toEqual([]);
  });

  it('still forwards paths that only look similar', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    for (const path of ['/up/..x', '/up/x..', '/up/.well-known/y', '/up/a%20b', '/up/x?next=../../etc&p=%2f']) {
      const res = await rawExchange(proxy.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(res.status, path).toBe(200);
    }
    expect(upstream.requests.map((request) => request.url)).toEqual([
      '/base/..x',
      '/base/x..',
      '/base/.well-known/y',
      '/base/a%20b',
      '/base/x?next=../../etc&p=%2f',
    ]);
  });

  it('answers 404 ROUTE_NOT_FOUND for unknown routes and longer names that share a prefix', async () => {
    const { proxy, upstream } = await startRoutedProxy();
    for (const path of ['/unknown/x', '/upx', '/upx/y', '/UP/x', '/', '/base/x']) {
      const res = await send(`${proxy.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(proxyError(res.body).code, path).toBe('ROUTE_NOT_FOUND');
    }
    expect(upstream.requests).toEqual([]);
  });
});

describe('error responses', () => {
  it('never carry a secret: client secret, refresh tokens, access tokens or the client credentials', async () => {
    const clientSecret = 'cs-7f3a9d41e2b8c6057d14';
    const provider = await startFakeProvider({ kind: 'collaborate', clientSecret });
    onTestFinished(() => provider.close());
    const seeds = [provider.issueRefreshToken(), provider.issueRefreshToken()];
    const deadSeed = 'rt-not-known-to-the-provider-9c1e';
    const port = await closedPort();
    const auth = (seed: string) =>
      `auth:\n    preset: collaborate\n    tokenUrl: ${provider.tokenUrl}\n    clientId: client-id\n    clientSecret: ${clientSecret}\n    refreshToken: ${seed}`;
    const proxy = await startProxy(
      configYaml(
        [
          `ok:\n  target: ${provider.apiBaseUrl}\n  ${auth(seeds[0] ?? '')}`,
          `down:\n  target: http://127.0.0.1:${port}/api\n  ${auth(seeds[1] ?? '')}`,
          `dead:\n  target: ${provider.apiBaseUrl}\n  ${auth(deadSeed)}`,
        ].join('\n'),
      ),
    );
    const clientHeaders = { authorization: 'Bearer client-private-token-55aa', cookie: 'session=client-cookie-66bb' };
    expect((await send(`${proxy.url}/ok/3/sites`, { headers: clientHeaders })).status).toBe(200);

    const errors = [
      await send(`${proxy.url}/nowhere/${'x'.repeat(300)}?access_token=query-secret`, { headers: clientHeaders }),
      await send(`${proxy.url}/ok/a%2fb?access_token=query-secret`, { headers: clientHeaders }),
      await send(`${proxy.url}/ok/x`, { method: 'TRACE', headers: clientHeaders }),
      await send(`${proxy.url}/down/x?access_token=query-secret`, { headers: clientHeaders }),
      await send(`${proxy.url}/dead/x`, { headers: clientHeaders }),
    ];
    expect(errors.map((res) => [res.status, proxyError(res.body).code])).toEqual([
      [404, 'ROUTE_NOT_FOUND'],
      [400, 'BAD_REQUEST_TARGET'],
      [405, 'METHOD_NOT_ALLOWED'],
      [502, 'UPSTREAM_UNREACHABLE'],
      [503, 'CREDENTIAL_DEAD'],
    ]);
    const secrets = [
      clientSecret,
      ...seeds,
      deadSeed,
      ...provider.issuedTokens,
      'client-private-token-55aa',
      'client-cookie-66bb',
      'query-secret',
    ];
    expect(provider.issuedTokens.length).toBeGreaterThan(0);
    for (const res of errors) {
      const everything = `${res.rawHeaders.join('\n')}\n${res.body.toString()}`;
      for (const secret of secrets) expect(everything).not.toContain(secret);
    }
    for (const secret of secrets) expect(proxy.rawLogs()).not.toContain(secret);
  });

  it('pass upstream errors through untouched, not wrapped', async () => {
    const answers: Record<string, [number, Record<string, string>, string]> = {
      '/base/e500': [500, { 'content-type': 'application/json', 'x-upstream': 'a' }, '{"error":"boom","trace":"upstream-owned"}'],
      '/base/e404': [404, { 'content-type': 'text/plain' }, 'no such thing'],
      '/base/e502': [502, { 'content-type': 'text/html' }, '<h1>upstream gateway says 502</h1>'],
      '/base/e503': [503, { 'retry-after': '7' }, ''],
      '/base/e400': [400, { 'content-type': 'application/json' }, '{"error":{"code":"UPSTREAM_OWN","message":"m"}}'],
    };
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        const [status, headers, body] = answers[req.url ?? ''] ?? [418, {}, ''];
        res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
      },
    });
    for (const [path, [status, headers, body]] of Object.entries(answers)) {
      const res = await send(`${routeUrl}${path.slice('/base'.length)}`);
      expect(res.status, path).toBe(status);
      for (const [name, value] of Object.entries(headers)) expect(res.headers[name], `${path} ${name}`).toBe(value);
      expect(res.body.toString(), path).toBe(body);
      expect(res.headers['x-request-id'], path).toBeUndefined();
    }
  });

  it('pass a rejection that survives the one replay through untouched', async () => {
    const body = '{"error":"invalid_token","error_description":"upstream says no"}';
    const { routeUrl, upstream, provider } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(401, 'Nope', {
          'content-type': 'application/json',
          'www-authenticate': 'Bearer error="invalid_token"',
          'content-length': String(body.length),
        });
        res.end(body);
      },
    });
    const res = await send(`${routeUrl}/me`, { method: 'POST', headers: { 'content-length': '4' }, body: 'data' });
    expect([res.status, res.statusMessage, res.body.toString()]).toEqual([401, 'Nope', body]);
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    // One replay with a fresh token, then the upstream's answer as it was.
    expect(upstream.requests).toHaveLength(2);
    expect(provider.counters.refreshGrants).toBe(2);
  });
});
