/**
 * The one error writer: an error answered through a ServerResponse (sendProxyError) and the same error
 * written straight onto a socket (refuseSocket, for parser refusals, CONNECT, upgrades, the connection cap)
 * reach the client as the same bytes, for every code registered with an HTTP status.
 */
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ErrorRegistry, ProxyError, type ErrorCode } from '../../src/errors.js';
import { sendProxyError } from '../../src/http/error-response.js';
import { refuseSocket } from '../../src/proxy/raw-refusal.js';
import { proxyError, rawExchange } from '../helpers/raw-http.js';

const httpCodes = (Object.keys(ErrorRegistry) as (keyof typeof ErrorRegistry)[]).filter(
  (code): code is ErrorCode => 'status' in ErrorRegistry[code],
);

/** The error a test asks for by path: /CODE, with a Retry-After on the 503s as the proxy sends them. */
function errorFor(path: string): ProxyError {
  const code = path.slice(1) as ErrorCode;
  const status = ErrorRegistry[code].status;
  return new ProxyError(code, `test refusal for ${code}`, status === 503 ? { retryAfterSeconds: 2 } : {});
}

async function listening(server: Server | ReturnType<typeof createServer>): Promise<string> {
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Head lines with lowercased names and the Date value (a clock reading) replaced once checked. */
function comparable(text: string): { statusLine: string; headers: string[]; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers = lines.map((line) => {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name !== 'date') return `${name}: ${value}`;
    expect(new Date(value).toUTCString(), 'an RFC 9110 IMF-fixdate').toBe(value);
    return 'date: (checked)';
  });
  return { statusLine, headers, body: text.slice(end + 4) };
}

describe('one error writer for responses and raw socket refusals', () => {
  it('writes the same status line, headers and body either way, for every code with an HTTP status', async () => {
    const viaResponse = await listening(createServer((req, res) => sendProxyError(res, errorFor(req.url ?? '/'), 'same-id-7')));
    const viaSocket = await listening(
      createTcpServer((socket) => {
        socket.once('data', (chunk: Buffer) => refuseSocket(socket, errorFor(chunk.toString('latin1').split(' ')[1] ?? '/'), 'same-id-7'));
      }),
    );
    expect(httpCodes.length).toBeGreaterThan(10);
    for (const code of httpCodes) {
      // Connection: close, so that Node's own Connection header says what the raw refusal says.
      const request = `GET /${code} HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n`;
      const answered = await rawExchange(viaResponse, request);
      const refused = await rawExchange(viaSocket, request);
      expect(comparable(refused.text), code).toEqual(comparable(answered.text));
      expect(refused.status, code).toBe(ErrorRegistry[code].status);
      expect(proxyError(refused.body), code).toEqual({ code, message: `test refusal for ${code}`, requestId: 'same-id-7' });
      expect(refused.headers['x-request-id'], code).toBe('same-id-7');
    }
  });
});
