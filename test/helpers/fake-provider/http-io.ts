import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RecordedRequest } from './types.js';

/** A complete canned answer: the wire formats build these, one function writes them. */
export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Collect the whole request, body and trailers included, so tests can assert on exactly what arrived. */
export function recordRequest(req: IncomingMessage): Promise<RecordedRequest> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', reject);
    req.on('end', () => {
      resolve({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        trailers: req.trailers,
      });
    });
  });
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    ...reply.headers,
    'content-length': String(Buffer.byteLength(reply.body)),
  });
  res.end(reply.body);
}

export function jsonReply(status: number, value: unknown, contentType = 'application/json'): Reply {
  return { status, headers: { 'content-type': contentType }, body: JSON.stringify(value) };
}

export function xmlReply(status: number, body: string): Reply {
  return { status, headers: { 'content-type': 'application/xml' }, body };
}

export function textReply(status: number, body: string): Reply {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

const XML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** `<root><k>v</k>…</root>`; values are escaped even though tokens never need it, so odd test input stays well-formed. */
export function xmlElement(root: string, fields: Readonly<Record<string, string | number>>): string {
  const inner = Object.entries(fields)
    .map(([k, v]) => `<${k}>${String(v).replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c)}</${k}>`)
    .join('');
  return `<${root}>${inner}</${root}>`;
}

/** Header values by lowercased name from rawHeaders: node folds or drops duplicates in `headers`, and we must see them. */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (key !== undefined && value !== undefined && key.toLowerCase() === name) values.push(value);
  }
  return values;
}

/** The media type without parameters, lowercased; '' when absent. */
export function mediaType(req: RecordedRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}
