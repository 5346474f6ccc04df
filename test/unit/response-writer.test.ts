/**
 * The guarded writers on a real node:http server: what Node refuses to write is refused (or breaks that
 * one response), never thrown, and the proxy's own error response is whole even after a refused head.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { sendProxyError } from '../../src/http/error-response.js';
import { endUpstreamResponse, writeUpstreamChunk, writeUpstreamHead, type HeadOutcome } from '../../src/proxy/response-writer.js';
import { proxyError, send } from '../helpers/raw-http.js';

/** A server whose handler runs `handle`; what it throws is kept, so the test can show nothing was thrown. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; thrown: unknown[] }> {
  const thrown: unknown[] = [];
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      thrown.push(error);
      res.destroy();
    }
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, thrown };
}

const badGateway = () => new ProxyError('UPSTREAM_BAD_RESPONSE', 'the upstream sent a response head that cannot be forwarded');

describe('writeUpstreamHead', () => {
  it('refuses a header value Node will not write, and the 502 after it is whole even for a 204 head', async () => {
    const outcomes: HeadOutcome[] = [];
    const { url, thrown } = await serve((_req, res) => {
      // writeHead marks a 204 bodyless before it checks the header lines: the 502 must get its body back.
      outcomes.push(writeUpstreamHead(res, { status: 204, statusMessage: 'No Content', headers: { 'x-bad': 'caf\u20ac' } }, true));
      sendProxyError(res, badGateway(), 'req-1');
    });
    const res = await send(url);
    expect(thrown).toEqual([]);
    expect(outcomes).toEqual(['refused']);
    expect([res.status, res.statusMessage]).toEqual([502, 'Bad Gateway']);
    expect(proxyError(res.body)).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', requestId: 'req-1' });
  });

  it('refuses statuses outside 200-999 and reason phrases with control characters', async () => {
    const outcomes: HeadOutcome[] = [];
    const { url, thrown } = await serve((_req, res) => {
      for (const status of [99, 0, 1000, Number.NaN])
        outcomes.push(writeUpstreamHead(res, { status, statusMessage: 'X', headers: {} }, true));
      outcomes.push(writeUpstreamHead(res, { status: 200, statusMessage: 'O\x01K', headers: {} }, true));
      sendProxyError(res, badGateway(), 'req-2');
    });
    const res = await send(url);
    expect(thrown).toEqual([]);
    expect(outcomes).toEqual(['refused', 'refused', 'refused', 'refused', 'refused']);
    expect([res.status, res.statusMessage]).toEqual([502, 'Bad Gateway']);
  });

  it('says "answered" instead of writing a second head', async () => {
    const outcomes: HeadOutcome[] = [];
    const { url, thrown } = await serve((_req, res) => {
      sendProxyError(res, new ProxyError('REQUEST_TIMEOUT', 'stalled'), 'req-3');
      outcomes.push(writeUpstreamHead(res, { status: 200, statusMessage: 'OK', headers: {} }, true));
      writeUpstreamChunk(res, Buffer.from('late'));
    });
    const res = await send(url);
    expect(thrown).toEqual([]);
    expect(outcomes).toEqual(['answered']);
    expect(res.status).toBe(408);
  });
});

describe('endUpstreamResponse', () => {
  it('breaks the response off when a trailer cannot be written, instead of throwing', async () => {
    const { url, thrown } = await serve((_req, res) => {
      writeUpstreamHead(res, { status: 200, statusMessage: 'OK', headers: { trailer: 'x-sum' } }, true);
      writeUpstreamChunk(res, Buffer.from('part'));
      endUpstreamResponse(res, ['x-sum', 'bad\u0001value']);
    });
    await expect(send(url, { headers: { te: 'trailers' } })).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
    expect(thrown).toEqual([]);
  });
});

describe('sendProxyError', () => {
  it('uses its own reason phrase whatever res.statusMessage holds, and sends Retry-After', async () => {
    const { url, thrown } = await serve((_req, res) => {
      res.statusMessage = 'O\x01K'; // what a refused upstream head leaves behind
      sendProxyError(res, new ProxyError('UPSTREAM_QUEUE_FULL', 'full', { retryAfterSeconds: 2 }), 'req-4');
    });
    const res = await send(url);
    expect(thrown).toEqual([]);
    expect([res.status, res.statusMessage, res.headers['retry-after']]).toEqual([503, 'Service Unavailable', '2']);
  });
});
