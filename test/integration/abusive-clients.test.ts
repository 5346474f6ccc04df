/**
 * Clients that misbehave, on purpose or not: requests Node's parser refuses, too many connections, bodies
 * that stall, bodies that fill memory, more requests than an upstream can take. Each gets the proxy's JSON
 * error (never a bare status line or a silent close) and none can make the proxy hold memory or sockets
 * without bound. The in-process tests check each limit; the last test measures a real proxy process.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startRoutedProxy, type PlainUpstream, type UpstreamHandler } from '../helpers/plain-upstream.js';
import { proxyError, send, type SentResponse } from '../helpers/raw-http.js';
import { parseResponse, rawClient, requestHead, type ParsedResponse } from '../helpers/raw-client.js';
import { eventually, type RunningProxy } from '../helpers/start-proxy.js';

interface Setup {
  proxy: RunningProxy;
  upstream: PlainUpstream;
  routeUrl: string;
  host: string;
}

/** The proxy (route /up → plain upstream /base) with extra top-level YAML and extra upstream keys. */
async function setup(options: { top?: string; upstream?: string; handler?: UpstreamHandler } = {}): Promise<Setup> {
  const { proxy, upstream, routeUrl } = await startRoutedProxy({
    ...(options.handler ? { handler: options.handler } : {}),
    ...(options.upstream ? { extra: options.upstream } : {}),
    ...(options.top ? { top: options.top } : {}),
  });
  return { proxy, upstream, routeUrl, host: new URL(proxy.url).host };
}

function expectJsonError(res: ParsedResponse | undefined, status: number, code: string): { requestId: string } {
  expect(res?.status, JSON.stringify(res)).toBe(status);
  expect(res?.headers['content-type']).toMatch(/^application\/json/);
  const error = proxyError(res?.body ?? '');
  expect(error.code).toBe(code);
  expect(res?.headers['x-request-id']).toBe(error.requestId);
  return error;
}

function expectSentError(res: SentResponse, status: number, code: string): void {
  expect(res.status, res.body.toString()).toBe(status);
  expect(proxyError(res.body).code).toBe(code);
}

/** Requests the proxy counted under upstream "" with this status. */
async function unroutedCount(proxy: RunningProxy, status: number): Promise<number> {
  const metric = await proxy.app.metrics.requests.get();
  return metric.values.find((value) => value.labels.upstream === '' && value.labels.status === String(status))?.value ?? 0;
}

function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** An upstream handler that holds every request until `release()`. */
function holdingHandler(): { handler: UpstreamHandler; release: () => void } {
  const waiting: ServerResponse[] = [];
  let released = false;
  const answer = (res: ServerResponse) => res.end('done');
  return {
    handler: (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      if (released) answer(res);
      else waiting.push(res);
    },
    release: () => {
      released = true;
      waiting.splice(0).forEach(answer);
    },
  };
}

describe('requests Node’s parser refuses get the proxy’s JSON error', () => {
  it('answers a 100 KB header with 431 HEADERS_TOO_LARGE, logs the parser code but not the bytes, and counts it', async () => {
    const { proxy, host } = await setup();
    const client = await rawClient(proxy.url);
    client.write(requestHead('GET', '/up/x', host, ['Authorization: Bearer leaked-credential-7f3a', `X-Big: ${'a'.repeat(100_000)}`]));
    const res = parseResponse(await client.closed);
    const { requestId } = expectJsonError(res, 431, 'HEADERS_TOO_LARGE');
    expect(res?.reason).toBe('Request Header Fields Too Large');
    expect(res?.headers.connection).toBe('close');
    const logged = proxy.logs.find((line) => line.event === 'client_error');
    expect(logged).toMatchObject({ code: 'HPE_HEADER_OVERFLOW', reqId: requestId, status: 431 });
    expect(proxy.rawLogs()).not.toContain('leaked-credential');
    expect(proxy.rawLogs()).not.toContain('aaaaaaaa');
    expect(await unroutedCount(proxy, 431)).toBe(1);
  });

  it('answers a 100 KB request target with 414 URI_TOO_LONG', async () => {
    const { proxy, host } = await setup();
    const client = await rawClient(proxy.url);
    client.write(requestHead('GET', `/up/${'p'.repeat(100_000)}`, host));
    expectJsonError(parseResponse(await client.closed), 414, 'URI_TOO_LONG');
    expect(await unroutedCount(proxy, 414)).toBe(1);
  });

  it('answers a malformed request with 400 BAD_REQUEST and keeps serving', async () => {
    const { proxy, routeUrl, host } = await setup();
    const client = await rawClient(proxy.url);
    client.write(requestHead('GET', '/up/x', host, ['Bad Header: has a space in its name']));
    expectJsonError(parseResponse(await client.closed), 400, 'BAD_REQUEST');
    expect(proxy.logs.find((line) => line.event === 'client_error')).toMatchObject({ code: 'HPE_INVALID_HEADER_TOKEN', status: 400 });
    expect(await unroutedCount(proxy, 400)).toBe(1);
    expect((await send(`${routeUrl}/after`)).status).toBe(200);
  });
});

describe('client connection cap', () => {
  it('answers connections beyond limits.maxClientConnections with 503 TOO_MANY_CONNECTIONS, and serves again once one closes', async () => {
    const { proxy, routeUrl, host } = await setup({ top: 'limits: { maxClientConnections: 2 }\n' });
    const first = await rawClient(proxy.url);
    await rawClient(proxy.url);
    const third = await rawClient(proxy.url);
    third.write(requestHead('GET', '/up/x', host));
    const refused = parseResponse(await third.closed);
    expectJsonError(refused, 503, 'TOO_MANY_CONNECTIONS');
    expect(refused?.headers['retry-after']).toBe('1');
    expect(refused?.headers.connection).toBe('close');
    first.socket.destroy();
    await eventually(
      async () => (await send(`${routeUrl}/again`).catch(() => undefined))?.status === 200,
      5000,
      'a request after a connection closed',
    );
  });
});

describe('request body idle timeout', () => {
  const top = 'limits: { clientBodyIdleTimeoutMs: 300 }\n';

  it('answers 408 REQUEST_TIMEOUT with connection: close when a buffered body stalls, without forwarding it', async () => {
    const { proxy, upstream, host } = await setup({ top });
    const client = await rawClient(proxy.url);
    client.write(`${requestHead('POST', '/up/x', host, ['Content-Length: 10'])}abc`);
    const res = parseResponse(await deadline(client.closed, 5000, 'the connection to close'));
    expectJsonError(res, 408, 'REQUEST_TIMEOUT');
    expect(res?.headers.connection).toBe('close');
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers 408 and aborts the upstream request when a streamed body stalls', async () => {
    let upstreamClosed = false;
    const { proxy, upstream, host } = await setup({
      top,
      handler: (req) => {
        req.resume();
        req.once('close', () => (upstreamClosed = true));
      },
    });
    const client = await rawClient(proxy.url);
    client.write(`${requestHead('POST', '/up/x', host, ['Transfer-Encoding: chunked'])}3\r\nabc\r\n`);
    const res = parseResponse(await deadline(client.closed, 5000, 'the connection to close'));
    expectJsonError(res, 408, 'REQUEST_TIMEOUT');
    expect(upstream.requests).toHaveLength(1);
    await eventually(() => upstreamClosed, 5000, 'the upstream request to be aborted');
  });

  it('breaks off a response that already started when the body stalls', async () => {
    const { proxy, host } = await setup({
      top,
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
      },
    });
    const client = await rawClient(proxy.url);
    client.write(`${requestHead('POST', '/up/x', host, ['Transfer-Encoding: chunked'])}3\r\nabc\r\n`);
    const text = await deadline(client.closed, 5000, 'the connection to close');
    expect(parseResponse(text)?.status).toBe(200);
    expect(text).not.toMatch(/\r\n0\r\n\r\n$/); // never the last chunk: the client sees a broken response
  });

  it('does not time out a completed body whose response takes longer than the idle timeout', async () => {
    const { routeUrl } = await setup({
      top,
      handler: (req, res) => {
        req.resume();
        setTimeout(() => res.end('slow but fine'), 900);
      },
    });
    const res = await send(`${routeUrl}/x`, { method: 'POST', body: 'abc' });
    expect([res.status, res.body.toString()]).toEqual([200, 'slow but fine']);
  });
});

describe('replay buffer budget', () => {
  it('answers 503 REPLAY_BUFFER_FULL with Retry-After while the budget is taken, and serves once it is released', async () => {
    const { proxy, routeUrl, host } = await setup({ top: 'limits: { maxBufferedBodyBytes: 100 }\n' });
    const holder = await rawClient(proxy.url);
    holder.write(`${requestHead('POST', '/up/hold', host, ['Content-Length: 80'])}${'h'.repeat(10)}`);
    let refused: SentResponse | undefined;
    await eventually(
      async () => {
        refused = await send(`${routeUrl}/other`, { method: 'POST', body: 'o'.repeat(50) });
        return refused.status === 503;
      },
      5000,
      'a second body to be refused while 80 of 100 bytes are held',
    );
    expectSentError(refused as SentResponse, 503, 'REPLAY_BUFFER_FULL');
    expect(refused?.headers['retry-after']).toBe('1');

    holder.write('h'.repeat(70));
    await eventually(() => parseResponse(holder.received())?.status === 200, 5000, 'the held request to complete');
    const after = await send(`${routeUrl}/other`, { method: 'POST', body: 'o'.repeat(50) });
    expect(after.status).toBe(200);
  });
});

describe('upstream queue bound', () => {
  it('answers 503 UPSTREAM_QUEUE_FULL beyond maxConnections + maxQueuedRequests', async () => {
    const gate = holdingHandler();
    const { routeUrl, upstream } = await setup({ handler: gate.handler, upstream: 'maxConnections: 1\nmaxQueuedRequests: 1' });
    const first = send(`${routeUrl}/1`);
    await eventually(() => upstream.requests.length === 1, 5000, 'the first request upstream');
    const queuedOrRefused = [send(`${routeUrl}/2`), send(`${routeUrl}/3`)];
    // One of the two waits for the connection, the other finds the queue full.
    const refused = await deadline(Promise.race(queuedOrRefused), 5000, 'a refusal');
    expectSentError(refused, 503, 'UPSTREAM_QUEUE_FULL');
    expect(refused.headers['retry-after']).toBe('1');
    gate.release();
    const statuses = (await Promise.all([first, ...queuedOrRefused])).map((res) => res.status).sort();
    expect(statuses).toEqual([200, 200, 503]);
  });

  it('answers 503 UPSTREAM_QUEUE_TIMEOUT when no connection frees up within queueTimeoutMs, and serves afterwards', async () => {
    const gate = holdingHandler();
    const { routeUrl, upstream } = await setup({ handler: gate.handler, upstream: 'maxConnections: 1\nqueueTimeoutMs: 300' });
    const first = send(`${routeUrl}/1`);
    await eventually(() => upstream.requests.length === 1, 5000, 'the first request upstream');
    const waited = await deadline(send(`${routeUrl}/2`), 5000, 'the queued request to give up');
    expectSentError(waited, 503, 'UPSTREAM_QUEUE_TIMEOUT');
    expect(waited.headers['retry-after']).toBe('1');
    gate.release();
    expect((await first).status).toBe(200);
    expect((await send(`${routeUrl}/3`)).status).toBe(200);
    expect(upstream.requests.map((request) => request.url)).not.toContain('/base/2');
  });
});

describe('inbound client keys', () => {
  it('refuses a request without an accepted key with 401 CLIENT_UNAUTHENTICATED before anything else', async () => {
    const digest = createHash('sha256').update('the-right-key').digest('hex');
    const { proxy, upstream } = await setup({ top: `inboundAuth: { keys: [{ name: ci, sha256: ${digest} }] }\n` });
    const routed = await send(`${proxy.url}/up/x`);
    expectSentError(routed, 401, 'CLIENT_UNAUTHENTICATED');
    // Not even the route table is consulted: an unknown path is refused the same way, not with 404.
    expectSentError(await send(`${proxy.url}/nowhere`), 401, 'CLIENT_UNAUTHENTICATED');
    expect(upstream.requests).toHaveLength(0);
  });

  it('never forwards the inbound key header upstream', async () => {
    const { routeUrl, upstream } = await setup({ top: 'inboundAuth: { header: X-Client-Key }\n' });
    const res = await send(`${routeUrl}/x`, { headers: { 'x-client-key': 'some-client-key', 'x-kept': 'kept' } });
    expect(res.status).toBe(200);
    expect(upstream.requests.at(-1)?.headers['x-client-key']).toBeUndefined();
    expect(upstream.requests.at(-1)?.headers['x-kept']).toBe('kept');
  });
});
