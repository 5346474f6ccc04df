/**
 * The one writer of error answers, for every listener of the project (the proxy, the admin listener, the
 * injection webhook) and for refusals written straight onto a socket (raw-refusal.ts): the status and
 * reason phrase of the error's registered code, X-Request-Id, and the body
 * {"error":{"code","message","requestId"}}. Both paths take their head and body from errorResponse(),
 * so a client sees the same answer for the same error whichever path wrote it.
 * It never throws: it runs on the error path, where an exception would have nowhere left to go.
 */
import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { ProxyError } from '../errors.js';

export interface ErrorResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-case names, in the order written. */
  readonly headers: readonly (readonly [name: string, value: string])[];
  readonly body: string;
}

export function errorResponse(error: ProxyError, requestId: string): ErrorResponse {
  const body = errorBody(error, requestId);
  const headers: [string, string][] = [
    ['content-type', 'application/json; charset=utf-8'],
    ['content-length', String(Buffer.byteLength(body))],
    ['cache-control', 'no-store'],
    ['x-request-id', requestId],
    // RFC 9110 §6.6.1: a server with a clock must send Date with 4xx answers (may with 5xx). Node adds it to a
    // ServerResponse by itself (and leaves it out once set here); a raw refusal has only this one.
    ['date', new Date().toUTCString()],
  ];
  // RFC 9110 §10.2.3: how long a client should wait before it tries again.
  if (error.retryAfterSeconds !== undefined) headers.push(['retry-after', String(error.retryAfterSeconds)]);
  // The reason phrase is always our own: res.statusMessage may still hold an upstream's refused one.
  return { status: error.status, reason: reasonPhrase(error.status), headers, body };
}

/** Answers `res` with the error; a response already started cannot be answered any more and is broken off. */
export function sendProxyError(res: ServerResponse, error: ProxyError, requestId: string): void {
  try {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const response = errorResponse(error, requestId);
    const headers: OutgoingHttpHeaders = Object.fromEntries(response.headers);
    res.writeHead(response.status, response.reason, headers);
    res.end(response.body);
  } catch {
    res.destroy();
  }
}

export function errorBody(error: ProxyError, requestId: string): string {
  return JSON.stringify({ error: { code: error.code, message: error.message, requestId } });
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}
