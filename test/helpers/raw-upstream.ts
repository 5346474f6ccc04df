/**
 * An upstream double that answers every request with exact bytes, for answers no HTTP server library
 * would produce (control characters in the reason phrase, statuses out of range, a Trailer header on a
 * HEAD response, no HTTP at all). It waits for the end of each request head, writes the reply and closes
 * the connection, so each request gets the reply set at the time it arrived.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface RawUpstream {
  /** e.g. http://127.0.0.1:40123 */
  readonly origin: string;
  /** Request heads received so far, as latin1 text. */
  readonly requests: string[];
  /** The bytes (latin1 when a string) the next requests get. */
  setReply(reply: string | Buffer): void;
}

export async function startRawUpstream(reply: string | Buffer): Promise<RawUpstream> {
  let current = typeof reply === 'string' ? Buffer.from(reply, 'latin1') : reply;
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      requests.push(head.slice(0, end));
      head = '';
      socket.end(current);
    });
  });
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    setReply(next) {
      current = typeof next === 'string' ? Buffer.from(next, 'latin1') : next;
    },
  };
}
