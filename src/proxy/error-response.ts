/**
 * The one place that writes responses the proxy itself produces: {"error":{"code","message","requestId"}}.
 * It never throws: it runs on the error path, where an exception would have nowhere left to go.
 */
import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { ProxyError } from '../errors.js';

export function sendProxyError(res: ServerResponse, error: ProxyError, requestId: string): void {
  try {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = errorBody(error, requestId);
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-request-id': requestId,
    };
    // RFC 9110 §10.2.3: how long a client should wait before it tries again.
    if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
    // The reason phrase is always our own: res.statusMessage may still hold an upstream's refused one.
    res.writeHead(error.status, reasonPhrase(error.status), headers);
    res.end(body);
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
