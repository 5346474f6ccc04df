/**
 * Issue behaviour 1, forwarding: what the upstream receives and what the client gets back, through the
 * real proxy over real sockets. Streaming and large bodies are in forwarding-streams.test.ts, timeouts
 * and upstream failures in forwarding-timeouts.test.ts.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type EchoBody, startRoutedProxy } from '../helpers/plain-upstream.js';
import { headerValues, proxyError, send } from '../helpers/raw-http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function echo(body: Buffer): EchoBody {
  return JSON.parse(body.toString()) as EchoBody;
}

describe('forwarding: the request arrives intact', () => {
  it('keeps method, path, query and body bytes, under the target base path', async () => {
    const { routeUrl } = await startRoutedProxy();
    const body = Buffer.from([0, 1, 2, 255, 254, 13, 10, 0x7b, 0x22]);
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const withBody = method !== 'GET' && method !== 'DELETE';
      const res = await send(`${routeUrl}/a/b%20c/d.json?x=1&y=%2F%20&z=&x=2`, {
        method,
        headers: withBody ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {},
        ...(withBody ? { body } : {}),
      });
      expect(res.status).toBe(200);
      const seen = echo(res.body);
      expect(seen.method).toBe(method);
      expect(seen.url).toBe('/base/a/b%20c/d.json?x=1&y=%2F%20&z=&x=2');
      expect(seen.bodyLength).toBe(withBody ? body.length : 0);
      if (withBody) expect(seen.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
      if (withBody) expect(seen.headers['content-type']).toBe('application/octet-stream');
    }
  });

  it('maps the bare route and its trailing slash onto the base path', async () => {
    const { routeUrl, upstream } = await startRoutedProxy();
    expect((await send(routeUrl)).status).toBe(200);
    expect((await send(`${routeUrl}/`)).status).toBe(200);
    expect((await send(`${routeUrl}?q=1`)).status).toBe(200);
    expect(upstream.requests.map((request) => request.url)).toEqual(['/base', '/base/', '/base?q=1']);
  });

  it('sends a request to a target without base path at the root', async () => {
    const { routeUrl, upstream } = await startRoutedProxy({ basePath: '' });
    expect((await send(routeUrl)).status).toBe(200);
    expect((await send(`${routeUrl}/x/y?z=1`)).status).toBe(200);
    expect(upstream.requests.map((request) => request.url)).toEqual(['/', '/x/y?z=1']);
  });
});

describe('forwarding: the response comes back untouched', () => {
  it('passes status, reason phrase, repeated headers (Set-Cookie) and body bytes', async () => {
    const payload = Buffer.from('\u00ff\u0000binary\r\n\r\nstill body', 'latin1');
    const { routeUrl } = await startRoutedProxy({
      extra: 'cookies: pass', // the default, scope, rewrites Path (upstream-isolation.test.ts)
      handler: (req, res) => {
        req.resume();
        res.writeHead(207, 'Partly Fine', [
          'Content-Type',
          'application/x-custom; charset=latin1',
          'Set-Cookie',
          'a=1; Path=/; HttpOnly',
          'Set-Cookie',
          'b=2; Path=/x',
          'Set-Cookie',
          'c=3',
          'X-Multi',
          'one',
          'X-Multi',
          'two',
          'Cache-Control',
          'private, max-age=5',
          'ETag',
          '"v1"',
          'Content-Length',
          String(payload.length),
        ]);
        res.end(payload);
      },
    });
    const res = await send(`${routeUrl}/r`);
    expect(res.status).toBe(207);
    expect(res.statusMessage).toBe('Partly Fine');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/; HttpOnly', 'b=2; Path=/x', 'c=3']);
    expect(headerValues(res.rawHeaders, 'x-multi')).toEqual(['one', 'two']);
    expect(res.headers['content-type']).toBe('application/x-custom; charset=latin1');
    expect(res.headers['cache-control']).toBe('private, max-age=5');
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers['content-length']).toBe(String(payload.length));
    expect(res.body.equals(payload)).toBe(true);
  });

  it('passes HEAD and 204/304 answers without inventing a body', async () => {
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        if (req.url?.endsWith('/head')) res.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' }).end();
        else if (req.url?.endsWith('/nc')) res.writeHead(204, { 'x-done': 'yes' }).end();
        else res.writeHead(304, { etag: '"v1"' }).end();
      },
    });
    const head = await send(`${routeUrl}/head`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1234');
    expect(head.body.length).toBe(0);
    const noContent = await send(`${routeUrl}/nc`, { method: 'DELETE' });
    expect([noContent.status, noContent.headers['x-done'], noContent.body.length]).toEqual([204, 'yes', 0]);
    const notModified = await send(`${routeUrl}/nm`, { headers: { 'if-none-match': '"v1"' } });
    expect([notModified.status, notModified.headers.etag, notModified.body.length]).toEqual([304, '"v1"', 0]);
  });
});

describe('forwarding: header rules', () => {
  it('removes hop-by-hop request headers, including those the Connection header names', async () => {
    const { routeUrl, upstream } = await startRoutedProxy();
    const res = await send(`${routeUrl}/h`, {
      headers: [
        'Connection',
        'X-Secret-Hop, x-other-hop',
        'Keep-Alive',
        'timeout=99, max=7',
        'TE',
        'trailers',
        'Upgrade',
        'h2c',
        'Proxy-Connection',
        'keep-alive',
        'X-Secret-Hop',
        'hop-value-1',
        'X-Other-Hop',
        'hop-value-2',
        'X-End-To-End',
        'kept',
      ],
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests.at(-1);
    const names = (seen?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    for (const gone of ['keep-alive', 'te', 'upgrade', 'proxy-connection', 'x-secret-hop', 'x-other-hop'])
      expect(names).not.toContain(gone);
    expect(seen?.headers['x-end-to-end']).toBe('kept');
    // The proxy's own connection to the upstream may say keep-alive; it must not repeat the client's list.
    expect(headerValues(seen?.rawHeaders ?? [], 'connection').join()).not.toMatch(/hop/i);
  });

  it('removes hop-by-hop response headers, including those the Connection header names', async () => {
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, [
          'Connection',
          'X-Upstream-Hop',
          'Keep-Alive',
          'timeout=99, max=7',
          'Proxy-Connection',
          'keep-alive',
          'Proxy-Authenticate',
          'Basic realm="upstream-internal"',
          'X-Upstream-Hop',
          'internal-detail',
          'X-End-To-End',
          'kept',
          'Content-Length',
          '2',
        ]);
        res.end('ok');
      },
    });
    const res = await send(`${routeUrl}/h`);
    expect(res.status).toBe(200);
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    for (const gone of ['proxy-connection', 'proxy-authenticate', 'x-upstream-hop']) expect(names).not.toContain(gone);
    // Node's server adds its own Keep-Alive for the client hop; the upstream's value must not leak through.
    expect(headerValues(res.rawHeaders, 'keep-alive').join()).not.toContain('99');
    expect(headerValues(res.rawHeaders, 'connection').join()).not.toMatch(/hop/i);
    expect(res.headers['x-end-to-end']).toBe('kept');
    expect(res.body.toString()).toBe('ok');
  });

  it('sets X-Forwarded-For (replacing the client one), -Proto and -Host, and the target Host', async () => {
    const { proxy, routeUrl, upstream } = await startRoutedProxy();
    const proxyHost = new URL(proxy.url).host;
    await send(`${routeUrl}/f`, {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' },
    });
    await send(`${routeUrl}/f`);
    const [claimed, plain] = upstream.requests.slice(-2).map((request) => request.headers);
    expect(claimed?.['x-forwarded-for']).toBe('127.0.0.1');
    expect(claimed?.['x-forwarded-proto']).toBe('http');
    expect(claimed?.['x-forwarded-host']).toBe(proxyHost);
    expect(plain?.['x-forwarded-for']).toBe('127.0.0.1');
    expect(plain?.['x-forwarded-host']).toBe(proxyHost);
    expect(plain?.host).toBe(new URL(upstream.origin).host);
    for (const request of upstream.requests.slice(-2)) {
      for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'host'])
        expect(headerValues(request.rawHeaders, name)).toHaveLength(1);
    }
  });
});

describe('forwarding: X-Request-Id', () => {
  it('forwards a safe client id and replaces an unsafe or missing one with a generated id', async () => {
    const { routeUrl, upstream } = await startRoutedProxy();
    await send(`${routeUrl}/i`, { headers: { 'x-request-id': 'client-id_1.2:3' } });
    await send(`${routeUrl}/i`, { headers: { 'x-request-id': 'has spaces and "quotes"' } });
    await send(`${routeUrl}/i`, { headers: { 'x-request-id': 'a'.repeat(129) } });
    await send(`${routeUrl}/i`);
    await send(`${routeUrl}/i`);
    const ids = upstream.requests.map((request) => headerValues(request.rawHeaders, 'x-request-id'));
    expect(ids[0]).toEqual(['client-id_1.2:3']);
    for (const generated of ids.slice(1)) {
      expect(generated).toHaveLength(1);
      expect(generated[0]).toMatch(UUID);
    }
    expect(new Set(ids.slice(1).flat()).size).toBe(4);
  });

  it('returns the request id on errors the proxy produces', async () => {
    const { proxy } = await startRoutedProxy();
    const given = await send(`${proxy.url}/nowhere/x`, { headers: { 'x-request-id': 'trace-42' } });
    expect(given.status).toBe(404);
    expect(given.headers['x-request-id']).toBe('trace-42');
    expect(proxyError(given.body)).toMatchObject({ code: 'ROUTE_NOT_FOUND', requestId: 'trace-42' });
    const generated = await send(`${proxy.url}/nowhere/x`, { headers: { 'x-request-id': 'bad id' } });
    const { requestId } = proxyError(generated.body);
    expect(requestId).toMatch(UUID);
    expect(generated.headers['x-request-id']).toBe(requestId);
  });
});

describe('forwarding: upstream connections are pooled', () => {
  it('reuses kept-alive upstream connections across many client connections', async () => {
    const { routeUrl, upstream } = await startRoutedProxy();
    for (let i = 0; i < 40; i++) {
      // agent: false → every request comes on a new client connection; only the proxy can reuse.
      const res = await send(`${routeUrl}/k/${i}`, { method: 'POST', headers: { 'content-length': '3' }, body: 'abc' });
      expect(res.status).toBe(200);
    }
    expect(upstream.requests).toHaveLength(40);
    expect(upstream.connections).toBeLessThanOrEqual(2);
  });
});
