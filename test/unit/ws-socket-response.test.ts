/**
 * The heads written straight onto a client's socket for a WebSocket handshake: the 101 keeps what the client
 * checks (Connection, Upgrade, Sec-WebSocket-*) and drops framing headers; a final answer loses hop-by-hop
 * headers and says `connection: close`; a head Node would refuse to write is refused here too.
 */
import { describe, expect, it } from 'vitest';
import type { ResponseScope } from '../../src/proxy/response-scope.js';
import { finalResponseHead, switchingProtocolsHead } from '../../src/proxy/upgrade/socket-response.js';

const scope: ResponseScope = { routePath: '/chat', targetOrigin: 'http://127.0.0.1:9', targetBasePath: '/base', cookies: 'scope' };

function lines(head: string | undefined): string[] {
  expect(head).toBeDefined();
  expect(head?.endsWith('\r\n\r\n')).toBe(true);
  return (head ?? '').split('\r\n').filter(Boolean);
}

describe('switchingProtocolsHead', () => {
  it('keeps Connection, Upgrade and the Sec-WebSocket answer; drops framing headers; scopes cookies', () => {
    const head = switchingProtocolsHead(
      {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
        'sec-websocket-protocol': 'chat',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'set-cookie': 'session=1; Path=/',
      },
      scope,
    );
    const written = lines(head);
    expect(written[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(written).toContain('connection: Upgrade');
    expect(written).toContain('upgrade: websocket');
    expect(written).toContain('sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(written).toContain('sec-websocket-protocol: chat');
    expect(written.some((line) => line.startsWith('keep-alive') || line.startsWith('transfer-encoding'))).toBe(false);
    expect(written.find((line) => line.startsWith('set-cookie'))).toMatch(/Path=\/chat/);
  });

  it('refuses a header value Node would not write', () => {
    expect(switchingProtocolsHead({ upgrade: 'websocket', 'x-bad': 'a\r\nx-injected: 1' }, scope)).toBeUndefined();
  });
});

describe('finalResponseHead', () => {
  it('drops hop-by-hop headers, says connection: close, and sets the held body length', () => {
    const written = lines(
      finalResponseHead(
        403,
        'Forbidden',
        { 'content-type': 'text/plain', 'content-length': '99', upgrade: 'websocket', 'keep-alive': 'x' },
        scope,
        12,
      ),
    );
    expect(written[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(written).toContain('content-length: 12');
    expect(written).toContain('connection: close');
    expect(written.some((line) => line.startsWith('upgrade') || line.startsWith('keep-alive'))).toBe(false);
  });

  it('keeps the upstream length of a streamed body, and fills in a missing reason phrase', () => {
    const written = lines(finalResponseHead(404, undefined, { 'content-length': '5' }, scope));
    expect(written[0]).toBe('HTTP/1.1 404 Not Found');
    expect(written).toContain('content-length: 5');
  });

  it('refuses a status outside 200–999 and a reason phrase with control characters', () => {
    expect(finalResponseHead(99, 'x', {}, scope)).toBeUndefined();
    expect(finalResponseHead(1000, 'x', {}, scope)).toBeUndefined();
    expect(finalResponseHead(403, 'bad\r\nx-injected: 1', {}, scope)).toBeUndefined();
  });
});
