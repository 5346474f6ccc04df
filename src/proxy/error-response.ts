/** The one place that writes responses the proxy itself produces: {"error":{"code","message","requestId"}}. */
import type { ServerResponse } from 'node:http';
import type { ProxyError } from '../errors.js';

export function sendProxyError(res: ServerResponse, error: ProxyError, requestId: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message, requestId } });
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}
