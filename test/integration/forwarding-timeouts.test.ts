/**
 * Issue behaviour 1, timeouts and upstream failures: each timeout is configurable and ends in the
 * documented proxy error ({"error":{"code","message","requestId"}} with 502 or 504), and a failure in the
 * middle of a body reaches the client as a broken response, never as a short one that looks complete.
 */
import { request, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { blackholePort, closedPort, startRoutedProxy } from '../helpers/plain-upstream.js';
import { proxyError, send, type SentResponse } from '../helpers/raw-http.js';
import { eventually } from '../helpers/start-proxy.js';

function expectProxyError(res: SentResponse, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const error = proxyError(res.body);
  expect(error.code).toBe(code);
  expect(res.headers['x-request-id']).toBe(error.requestId);
}

/** A TCP server that runs `onSocket` for every connection: for upstreams that do not speak HTTP properly. */
async function rawUpstream(onSocket: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * Reads a response to its end; 'broken' when the connection ended before the message was complete.
 * Bounded: a stall must end by the configured idle timeout (300 ms, ~1 s with undici's coarse timers), not by some default.
 */
function outcome(res: IncomingMessage): Promise<{ how: 'complete' | 'broken' | 'still open after 5 s'; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const timer = setTimeout(() => resolve({ how: 'still open after 5 s', bytes }), 5000);
    res.on('data', (chunk: Buffer) => (bytes += chunk.length));
    res.on('error', () => undefined);
    res.on('close', () => {
      clearTimeout(timer);
      resolve({ how: res.complete ? 'complete' : 'broken', bytes });
    });
  });
}

function get(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => request(url, { agent: false }, resolve).on('error', reject).end());
}

describe('timeouts: connect', () => {
  it('answers 502 UPSTREAM_UNREACHABLE when the upstream refuses the connection', async () => {
    const port = await closedPort();
    const { routeUrl } = await startRoutedProxy({ target: `http://127.0.0.1:${port}/base` });
    expectProxyError(await send(`${routeUrl}/x`, { headers: { 'x-request-id': 'refused-1' } }), 502, 'UPSTREAM_UNREACHABLE');
  });

  // README and proxy.yaml document a connect timeout as 504 (as nginx does); a refused connection is 502.
  it('answers 504 UPSTREAM_TIMEOUT after connectTimeoutMs when the handshake never completes', async () => {
    const port = await blackholePort();
    const { routeUrl } = await startRoutedProxy({ target: `http://127.0.0.1:${port}/base`, extra: 'connectTimeoutMs: 300' });
    const started = performance.now();
    const res = await send(`${routeUrl}/x`);
    const elapsed = performance.now() - started;
    expectProxyError(res, 504, 'UPSTREAM_TIMEOUT');
    // The configured timeout, not some default (undici's is 10 s).
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
  });
});

describe('timeouts: response headers and body', () => {
  it('answers 504 UPSTREAM_TIMEOUT after headersTimeoutMs when the upstream never answers', async () => {
    const { routeUrl, upstream } = await startRoutedProxy({ extra: 'headersTimeoutMs: 300', handler: (req) => req.resume() });
    const started = performance.now();
    const res = await send(`${routeUrl}/slow`);
    const elapsed = performance.now() - started;
    expectProxyError(res, 504, 'UPSTREAM_TIMEOUT');
    expect(upstream.requests).toHaveLength(1);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
  });

  it('breaks the client response when the upstream stalls mid-body (Content-Length)', async () => {
    const { routeUrl } = await startRoutedProxy({
      extra: 'bodyIdleTimeoutMs: 300',
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-length': '1000' });
        res.write('x'.repeat(10));
      },
    });
    const res = await get(`${routeUrl}/stall`);
    expect(res.statusCode).toBe(200);
    expect(await outcome(res)).toEqual({ how: 'broken', bytes: 10 });
  });

  it('breaks the client response when the upstream stalls mid-body (chunked)', async () => {
    const { routeUrl, proxy } = await startRoutedProxy({
      extra: 'bodyIdleTimeoutMs: 300',
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial;');
      },
    });
    const res = await get(`${routeUrl}/stall`);
    // Chunked framing has no length to fall short of: only a missing last chunk tells the client.
    expect(await outcome(res)).toEqual({ how: 'broken', bytes: 8 });
    await eventually(() => proxy.logs.some((line) => line.msg === 'request' && line.error === 'UPSTREAM_BODY_ERROR'), 2000, 'access log');
  });

  it('breaks the client response when the upstream connection dies mid-body', async () => {
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial;', () => setImmediate(() => res.socket?.destroy()));
      },
    });
    expect(await outcome(await get(`${routeUrl}/die`))).toEqual({ how: 'broken', bytes: 8 });
  });
});

describe('upstream failures before a response', () => {
  it('answers 502 UPSTREAM_BAD_RESPONSE when the upstream does not speak HTTP', async () => {
    const target = await rawUpstream((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
    const { routeUrl } = await startRoutedProxy({ target: `${target}/base` });
    expectProxyError(await send(`${routeUrl}/x`), 502, 'UPSTREAM_BAD_RESPONSE');
  });

  it('answers 502 when the upstream closes the connection without answering', async () => {
    const target = await rawUpstream((socket) => socket.once('data', () => socket.destroy()));
    const { routeUrl } = await startRoutedProxy({ target: `${target}/base` });
    const res = await send(`${routeUrl}/x`, { method: 'POST', headers: { 'content-length': '2' }, body: 'hi' });
    expect(res.status).toBe(502);
    expect(['UPSTREAM_UNREACHABLE', 'UPSTREAM_BAD_RESPONSE']).toContain(proxyError(res.body).code);
  });

  it('stops the upstream request when the client goes away', async () => {
    let upstreamClosed = false;
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        res.on('close', () => (upstreamClosed = true));
      },
    });
    const res = await get(`${routeUrl}/abandon`);
    await new Promise((resolve) => res.once('data', resolve));
    res.destroy();
    await eventually(() => upstreamClosed, 3000, 'the upstream request to be closed');
  });
});
