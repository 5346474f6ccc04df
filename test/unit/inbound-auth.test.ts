import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { createInboundAuth } from '../../src/proxy/inbound-auth.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

const twoKeys: Config['inboundAuth'] = {
  header: 'x-sidecar-key',
  keys: [
    { name: 'billing-app', sha256: sha256('key-one') },
    { name: 'report-job', sha256: sha256('key-two') },
  ],
};

/**
 * Sends a request with `headerLines` over a real socket to a throwaway node:http server and returns what
 * the predicate says about the IncomingMessage it receives (so repeated headers arrive as Node parses them).
 */
async function admitted(predicate: (req: IncomingMessage) => boolean, headerLines: readonly string[]): Promise<boolean> {
  const server = createServer((req, res) => res.end(String(predicate(req))));
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
    socket.write(`${['GET /up/x HTTP/1.1', 'Host: 127.0.0.1', ...headerLines, 'Connection: close'].join('\r\n')}\r\n\r\n`);
  });
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  expect(['true', 'false']).toContain(body);
  return body === 'true';
}

function predicateFor(config: Config['inboundAuth']): (req: IncomingMessage) => boolean {
  const predicate = createInboundAuth(config);
  if (!predicate) throw new Error('expected a predicate for configured keys');
  return predicate;
}

describe('createInboundAuth', () => {
  it('returns no predicate when no keys are configured (every client is let in)', () => {
    expect(createInboundAuth({ header: 'x-sidecar-key', keys: [] })).toBeUndefined();
  });

  it('admits a request carrying any configured key, whatever the case of the header name', async () => {
    const predicate = predicateFor(twoKeys);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one'])).toBe(true);
    expect(await admitted(predicate, ['x-sidecar-key: key-two'])).toBe(true);
    expect(await admitted(predicate, ['X-SIDECAR-KEY: key-two'])).toBe(true);
  });

  it('refuses a missing, empty, wrong or near-miss key, the digest sent as if it were the key, and a key in another header', async () => {
    const predicate = predicateFor(twoKeys);
    expect(await admitted(predicate, [])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: '])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-three'])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one2'])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: KEY-ONE'])).toBe(false);
    expect(await admitted(predicate, [`X-Sidecar-Key: ${sha256('key-one')}`])).toBe(false);
    expect(await admitted(predicate, ['Authorization: Bearer key-one', 'X-Other-Key: key-one'])).toBe(false);
  });

  it('treats an empty header as no key, even if the digest of the empty string was configured', async () => {
    const predicate = predicateFor({ header: 'x-sidecar-key', keys: [{ name: 'empty', sha256: sha256('') }] });
    expect(await admitted(predicate, ['X-Sidecar-Key: '])).toBe(false);
    expect(await admitted(predicate, [])).toBe(false);
  });

  it('reads the configured header name, and only that one', async () => {
    const predicate = predicateFor({ ...twoKeys, header: 'x-client-key' });
    expect(await admitted(predicate, ['X-Client-Key: key-one'])).toBe(true);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one'])).toBe(false);
  });

  it('refuses a repeated header, even when every value is a valid key', async () => {
    const predicate = predicateFor(twoKeys);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one', 'X-Sidecar-Key: key-one'])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one', 'X-Sidecar-Key: key-two'])).toBe(false);
    expect(await admitted(predicate, ['X-Sidecar-Key: nope', 'X-Sidecar-Key: key-two'])).toBe(false);
  });

  it('does not read the ", "-joined value Node makes of a repeated header (it could match a key of its own)', async () => {
    const predicate = predicateFor({ header: 'x-sidecar-key', keys: [{ name: 'joined', sha256: sha256('key-one, key-two') }] });
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one, key-two'])).toBe(true);
    expect(await admitted(predicate, ['X-Sidecar-Key: key-one', 'X-Sidecar-Key: key-two'])).toBe(false);
  });
});
