import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { trailerList, withoutHopByHop, upstreamRequestHeaders, type RequestHeaderRules } from '../../src/proxy/header-rules.js';

const noStrip: RequestHeaderRules = { strip: new Set() };

/**
 * Sends `head` (request line and header lines, CRLF-joined here) over a real socket to a throwaway
 * node:http server, and returns what upstreamRequestHeaders makes of the IncomingMessage it receives.
 */
async function forwardedHeaders(lines: readonly string[], rules: RequestHeaderRules = noStrip, body = ''): Promise<string[]> {
  let seen: IncomingMessage | undefined;
  const server = createServer((req, res) => {
    seen = req;
    req.resume();
    req.on('end', () => res.end(JSON.stringify(upstreamRequestHeaders(req, rules, 'req-123'))));
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const response = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write(`${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`);
  });
  expect(seen, response).toBeDefined();
  // The body follows the last head (an Expect: 100-continue request first gets a 100 Continue head).
  return JSON.parse(response.slice(response.lastIndexOf('\r\n\r\n') + 4)) as string[];
}

/** [name, value] pairs from the flat list. */
function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

function namesOf(flat: readonly string[]): string[] {
  return pairs(flat).map(([name]) => name.toLowerCase());
}

describe('upstreamRequestHeaders (a real request through a real socket)', () => {
  it('removes hop-by-hop headers (RFC 9110 §7.6.1), including every name listed in Connection', async () => {
    const flat = await forwardedHeaders(
      [
        'POST /collaborate/x HTTP/1.1',
        'Host: 127.0.0.1:8080',
        'Connection: Keep-Alive, X-Hop-One , x-hop-two',
        'Keep-Alive: timeout=5',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: X-Checksum',
        'Upgrade: h2c',
        'X-Hop-One: 1',
        'X-HOP-TWO: 2',
        'Transfer-Encoding: chunked',
        'Accept: application/json',
        'X-Keep: kept',
      ],
      noStrip,
      '3\r\nabc\r\n0\r\n\r\n',
    );
    const names = namesOf(flat);
    for (const hop of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'te',
      'trailer',
      'upgrade',
      'x-hop-one',
      'x-hop-two',
      'transfer-encoding',
    ]) {
      expect(names).not.toContain(hop);
    }
    expect(pairs(flat)).toEqual(
      expect.arrayContaining([
        ['Accept', 'application/json'],
        ['X-Keep', 'kept'],
      ]),
    );
  });

  it('removes every credential the client sent: Authorization, Proxy-Authorization and the stripHeaders, in any case', async () => {
    const flat = await forwardedHeaders(
      [
        'GET /collaborate/x HTTP/1.1',
        'Host: 127.0.0.1:8080',
        'Authorization: Bearer client-token-1',
        'authorization: Basic Y2xpZW50OnNlY3JldA==',
        'Proxy-Authorization: Basic cHJveHk6cHc=',
        'X-API-KEY: key-1',
        'x-session-secret: s-1',
        'Cookie: a=b',
      ],
      { strip: new Set(['x-api-key', 'x-session-secret']) },
    );
    const text = JSON.stringify(flat);
    for (const value of ['client-token-1', 'Y2xpZW50OnNlY3JldA==', 'cHJveHk6cHc=', 'key-1', 's-1']) expect(text).not.toContain(value);
    expect(namesOf(flat)).not.toContain('authorization');
    expect(namesOf(flat)).not.toContain('proxy-authorization');
    // Headers that are not configured to be stripped pass.
    expect(pairs(flat)).toContainEqual(['Cookie', 'a=b']);
  });

  it('keeps end-to-end headers with their original case, order and repeated values', async () => {
    const flat = await forwardedHeaders([
      'GET /collaborate/x HTTP/1.1',
      'Host: 127.0.0.1:8080',
      'X-First: 1',
      'Accept-Language: de',
      'X-Repeated: a',
      'X-Repeated: b',
      'Content-Type: text/plain',
      'Content-Length: 0',
    ]);
    const kept = pairs(flat).filter(([name]) => !name.toLowerCase().startsWith('x-forwarded-') && name !== 'x-request-id');
    expect(kept).toEqual([
      ['X-First', '1'],
      ['Accept-Language', 'de'],
      ['X-Repeated', 'a'],
      ['X-Repeated', 'b'],
      ['Content-Type', 'text/plain'],
      ['Content-Length', '0'],
    ]);
  });

  it('drops Host and Expect (the forwarder sets its own)', async () => {
    const flat = await forwardedHeaders([
      'POST /collaborate/x HTTP/1.1',
      'Host: 127.0.0.1:8080',
      'Expect: 100-continue',
      'Content-Length: 0',
    ]);
    expect(namesOf(flat)).not.toContain('host');
    expect(namesOf(flat)).not.toContain('expect');
  });

  it("replaces the client's X-Forwarded-* with the proxy's own view (its clients are local apps, their claims are spoofable), once each", async () => {
    const flat = await forwardedHeaders([
      'GET /collaborate/x HTTP/1.1',
      'Host: proxy.local:8080',
      'X-Forwarded-For: 10.0.0.1',
      'X-Forwarded-For: 10.0.0.2',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: evil.example',
      'X-Request-Id: client-chosen',
    ]);
    const forwarded = pairs(flat).filter(([name]) => /^x-(forwarded-|request-id)/i.test(name));
    expect(forwarded).toEqual([
      ['x-forwarded-for', '127.0.0.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'proxy.local:8080'],
      ['x-request-id', 'req-123'],
    ]);
  });

  it('sets X-Forwarded-For to the client address when the client sent none', async () => {
    const flat = await forwardedHeaders(['GET /collaborate/x HTTP/1.1', 'Host: 127.0.0.1:8080']);
    expect(pairs(flat)).toContainEqual(['x-forwarded-for', '127.0.0.1']);
    expect(pairs(flat)).toContainEqual(['x-forwarded-host', '127.0.0.1:8080']);
  });
});

describe('withoutHopByHop', () => {
  it('removes hop-by-hop and Connection-listed headers but keeps Trailer and end-to-end headers', () => {
    const headers: Record<string, string | string[]> = {
      'content-type': 'application/json',
      connection: 'keep-alive, X-Upstream-Hop',
      'keep-alive': 'timeout=4',
      'transfer-encoding': 'chunked',
      'x-upstream-hop': 'x',
      'proxy-authenticate': 'Basic realm="upstream"',
      upgrade: 'h2c',
      trailer: 'X-Checksum',
      'set-cookie': ['a=1', 'b=2'],
      'www-authenticate': 'Bearer error="invalid_token"',
    };
    expect(withoutHopByHop(headers)).toEqual({
      'content-type': 'application/json',
      trailer: 'X-Checksum',
      'set-cookie': ['a=1', 'b=2'],
      'www-authenticate': 'Bearer error="invalid_token"',
    });
  });

  it('handles a repeated Connection header', () => {
    expect(withoutHopByHop({ connection: ['close', 'x-a'], 'x-a': '1', 'x-b': '2' })).toEqual({ 'x-b': '2' });
  });
});

describe('trailerList', () => {
  it('turns raw trailers into pairs and tolerates none', () => {
    expect(trailerList(['X-Checksum', 'abc', Buffer.from('X-Count'), Buffer.from('2')])).toEqual([
      ['X-Checksum', 'abc'],
      ['X-Count', '2'],
    ]);
    expect(trailerList(null)).toEqual([]);
    expect(trailerList(undefined)).toEqual([]);
  });
});
