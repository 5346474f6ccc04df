/**
 * A client that behaves badly on purpose: it writes exact bytes when the test says so (a head, part of a
 * body, then nothing), and collects whatever the server answers until the server closes the connection.
 */
import { connect, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface RawClient {
  readonly socket: Socket;
  write(text: string | Buffer): void;
  /** Everything received so far, as latin1 text. */
  received(): string;
  /** Resolves with everything received once the server closed the connection (or reset it). */
  readonly closed: Promise<string>;
}

export interface ParsedResponse {
  readonly status: number;
  readonly reason: string;
  /** Lowercased names; the last value wins. */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Connects to the proxy at `url` (its origin is used) and resolves once connected. */
export function rawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    onTestFinished(() => {
      socket.destroy();
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = new Promise<string>((done) => socket.once('close', () => done(text)));
    socket.on('error', () => undefined); // a reset ends it like a close; `closed` reports what arrived
    socket.once('connect', () =>
      resolve({
        socket,
        write: (data) => {
          socket.write(data);
        },
        received: () => text,
        closed,
      }),
    );
    socket.once('error', reject);
  });
}

/** The first response in `text`, or undefined while its head is incomplete. */
export function parseResponse(text: string): ParsedResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = headers['content-length'];
  const rest = text.slice(end + 4);
  return {
    status: Number(match?.[1] ?? 0),
    reason: match?.[2] ?? '',
    headers,
    body: length === undefined ? rest : rest.slice(0, Number(length)),
  };
}

/** A request head as written on the wire; `headers` are "Name: value" lines. */
export function requestHead(method: string, path: string, host: string, headers: string[] = []): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers.map((line) => `${line}\r\n`).join('')}\r\n`;
}
