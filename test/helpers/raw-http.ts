/**
 * Clients for proxy tests. `send` is node:http with no agent (a fresh connection per request) and
 * exposes raw headers and trailers; `rawExchange` writes exact bytes on a TCP socket, for request lines
 * that HTTP clients would normalise or refuse to send (dot segments, absolute-form, CONNECT, `*`).
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';

export interface SentResponse {
  readonly status: number;
  readonly statusMessage: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly trailers: NodeJS.Dict<string>;
  readonly body: Buffer;
}

export interface SendOptions {
  method?: string;
  /** A flat [name, value, …] list keeps duplicates and the exact case. */
  headers?: Record<string, string | string[]> | string[];
  body?: Buffer | string;
}

export function send(url: string, options: SendOptions = {}): Promise<SentResponse> {
  let headers = options.headers ?? {};
  // node:http adds Host by itself only when headers are an object.
  if (Array.isArray(headers) && !headers.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'host'))
    headers = ['Host', new URL(url).host, ...headers];
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve(toSent(res, Buffer.concat(chunks))));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function toSent(res: IncomingMessage, body: Buffer): SentResponse {
  return {
    status: res.statusCode ?? 0,
    statusMessage: res.statusMessage ?? '',
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    trailers: res.trailers,
    body,
  };
}

export interface RawResponse {
  readonly status: number;
  /** Lowercased names; the last value wins. */
  readonly headers: Record<string, string>;
  /** Everything after the head, as received (still chunk-framed if the response was chunked). */
  readonly body: string;
  readonly text: string;
}

/** Writes `text` on a new connection to the proxy, then reads until the server closes it. */
export function rawExchange(proxyUrl: string, text: string): Promise<RawResponse> {
  const { hostname, port } = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // One response is all we want: stop once a complete one with Content-Length is in.
      const sofar = Buffer.concat(chunks).toString('latin1');
      const parsed = parseRaw(sofar);
      const length = parsed?.headers['content-length'];
      if (parsed && length !== undefined && Buffer.byteLength(parsed.body, 'latin1') >= Number(length)) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const parsed = parseRaw(Buffer.concat(chunks).toString('latin1'));
      if (parsed) resolve(parsed);
      else reject(new Error(`no HTTP response; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    });
    socket.write(text, 'latin1');
  });
}

function parseRaw(text: string): RawResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: text.slice(end + 4), text };
}

/** The proxy's error body, checked against the contract {"error":{"code","message","requestId"}}. */
export function proxyError(body: Buffer | string): { code: string; message: string; requestId: string } {
  const parsed = JSON.parse(body.toString()) as { error?: Record<string, unknown> };
  const error = parsed.error;
  if (!error || Object.keys(parsed).length !== 1) throw new Error(`not a proxy error body: ${body.toString()}`);
  const { code, message, requestId } = error;
  if (typeof code !== 'string' || typeof message !== 'string' || typeof requestId !== 'string' || requestId === '') {
    throw new Error(`proxy error body breaks the contract: ${body.toString()}`);
  }
  return { code, message, requestId };
}

/** Every value of a header in a raw [name, value, …] list, by lowercased name (duplicates kept). */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === name) out.push(rawHeaders[i + 1] ?? '');
  return out;
}
