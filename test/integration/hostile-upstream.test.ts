/**
 * An upstream can send anything. Whatever it sends, the client gets either a response Node could write
 * or a clean 502 UPSTREAM_BAD_RESPONSE with the proxy's own reason phrase, and the proxy keeps serving:
 * an answer Node refuses to write must never become an exception that takes the process down.
 * Upstream doubles write exact bytes on a raw socket (test/helpers/raw-upstream.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { startRoutedProxy } from '../helpers/plain-upstream.js';
import { startProxyProcess, writeProxyConfig } from '../helpers/proxy-process.js';
import { headerValues, proxyError, rawExchange, send, type SentResponse } from '../helpers/raw-http.js';
import { startRawUpstream } from '../helpers/raw-upstream.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { configYaml } from '../helpers/start-proxy.js';

const GOOD = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok';

/** A chunked body with a declared trailer, as an upstream that computes a checksum while streaming sends it. */
const WITH_TRAILER =
  'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntrailer: x-checksum\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n';

function expectBadGateway(res: SentResponse): void {
  expect([res.status, res.statusMessage], res.body.toString()).toEqual([502, 'Bad Gateway']);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const error = proxyError(res.body);
  expect(error.code).toBe('UPSTREAM_BAD_RESPONSE');
  expect(res.headers['x-request-id']).toBe(error.requestId);
}

async function proxyInFrontOf(reply: string | Buffer) {
  const raw = await startRawUpstream(reply);
  const routed = await startRoutedProxy({ target: raw.origin });
  return { raw, ...routed };
}

describe('hostile upstream: answers Node cannot write become a clean 502', () => {
  const cases: [string, string | Buffer][] = [
    ['a control character in the reason phrase', 'HTTP/1.1 200 O\x01K\r\ncontent-length: 2\r\n\r\nhi'],
    [
      'a reason phrase beyond Latin-1 (undici decodes it as UTF-8)',
      Buffer.concat([Buffer.from('HTTP/1.1 200 '), Buffer.from('Okay \u20ac', 'utf8'), Buffer.from('\r\ncontent-length: 2\r\n\r\nhi')]),
    ],
    ['a control character in a header value', 'HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\ncontent-length: 2\r\n\r\nhi'],
    ['a space in a header name', 'HTTP/1.1 200 OK\r\nx bad: ab\r\ncontent-length: 2\r\n\r\nhi'],
    ['status 1000', 'HTTP/1.1 1000 Big\r\ncontent-length: 2\r\n\r\nhi'],
    ['status 099', 'HTTP/1.1 099 Low\r\ncontent-length: 2\r\n\r\nhi'],
    ['status 000', 'HTTP/1.1 000 Zero\r\ncontent-length: 2\r\n\r\nhi'],
    ['no HTTP at all', 'SSH-2.0-OpenSSH_9.6\r\n\r\n'],
  ];

  it.each(cases)('%s', async (_name, reply) => {
    const { raw, routeUrl } = await proxyInFrontOf(reply);
    expectBadGateway(await send(`${routeUrl}/x`));
    raw.setReply(GOOD);
    const after = await send(`${routeUrl}/x`);
    expect([after.status, after.body.toString()]).toEqual([200, 'ok']);
  });

  it('refuses a held rejection with a bad reason phrase the same way', async () => {
    // 401 is held back for a possible replay; sending the held answer must be guarded too.
    const { raw, routeUrl } = await proxyInFrontOf('HTTP/1.1 401 No\x01pe\r\ncontent-length: 2\r\n\r\nno');
    expectBadGateway(await send(`${routeUrl}/x`, { method: 'POST', body: 'abc' }));
    raw.setReply(GOOD);
    expect((await send(`${routeUrl}/x`)).status).toBe(200);
  });
});

describe('hostile upstream: trailers only where the client can take them', () => {
  it('answers an HTTP/1.0 client without the Trailer header or trailers', async () => {
    const { proxy } = await proxyInFrontOf(WITH_TRAILER);
    const host = new URL(proxy.url).host;
    const res = await rawExchange(proxy.url, `GET /up/t HTTP/1.0\r\nHost: ${host}\r\nTE: trailers\r\n\r\n`);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.trailer).toBeUndefined();
    expect(res.body).toBe('hello');
  });

  it('answers HEAD without the Trailer header', async () => {
    const { routeUrl } = await proxyInFrontOf('HTTP/1.1 200 OK\r\ntrailer: x-checksum\r\ntransfer-encoding: chunked\r\n\r\n');
    const res = await send(`${routeUrl}/t`, { method: 'HEAD', headers: { te: 'trailers' } });
    expect(res.status).toBe(200);
    expect(res.headers.trailer).toBeUndefined();
  });

  it('answers a bodyless status and a fixed-length body without the Trailer header', async () => {
    const { raw, routeUrl } = await proxyInFrontOf('HTTP/1.1 204 No Content\r\ntrailer: x-checksum\r\n\r\n');
    const noContent = await send(`${routeUrl}/t`, { headers: { te: 'trailers' } });
    expect([noContent.status, noContent.headers.trailer]).toEqual([204, undefined]);
    raw.setReply('HTTP/1.1 200 OK\r\ntrailer: x-checksum\r\ncontent-length: 2\r\n\r\nhi');
    const fixed = await send(`${routeUrl}/t`, { headers: { te: 'trailers' } });
    expect([fixed.status, fixed.headers.trailer, fixed.body.toString()]).toEqual([200, undefined, 'hi']);
  });

  it('drops trailers towards an HTTP/1.1 client that did not ask for them, and sends them to one that did', async () => {
    const { routeUrl } = await proxyInFrontOf(WITH_TRAILER);
    const without = await send(`${routeUrl}/t`);
    expect([without.status, without.body.toString()]).toEqual([200, 'hello']);
    expect(headerValues(without.rawHeaders, 'trailer')).toEqual([]);
    expect(without.trailers).toEqual({});
    const asked = await send(`${routeUrl}/t`, { headers: { te: 'trailers' } });
    expect([asked.status, asked.body.toString(), asked.headers.trailer]).toEqual([200, 'hello', 'x-checksum']);
    expect(asked.trailers).toEqual({ 'x-checksum': 'abc' });
  });
});

describe('hostile upstream: a real proxy process', () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 120_000);

  it('stays up after an upstream answers `200 O\\x01K`, and keeps serving', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    const raw = await startRawUpstream('HTTP/1.1 200 O\x01K\r\ncontent-length: 2\r\n\r\nhi');
    const top = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, accessLog: false }\nstore: { type: memory }\n';
    const upstream = `up:\n  target: ${raw.origin}\n  auth:\n    preset: apiax\n    tokenUrl: ${provider.tokenUrl}\n    refreshToken: ${provider.issueRefreshToken()}`;
    const proxy = await startProxyProcess(writeProxyConfig(configYaml(upstream, top)), 'hostile');
    try {
      for (let i = 0; i < 3; i++) expectBadGateway(await send(`${proxy.url}/up/x${i}`));
      // Let a crash (exit 70 on an unhandled rejection) happen before looking.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(proxy.cli.child.exitCode).toBeNull();
      raw.setReply(GOOD);
      const after = await send(`${proxy.url}/up/y`);
      expect([after.status, after.body.toString()]).toEqual([200, 'ok']);
      expect(proxy.cli.logs().filter((line) => line.event === 'crashed')).toEqual([]);
    } finally {
      await provider.close();
    }
  });
});
