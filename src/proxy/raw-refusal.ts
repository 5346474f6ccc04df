/**
 * Refusals written straight onto a socket, where no ServerResponse exists: requests Node's parser
 * refused (clientError), CONNECT and upgrade requests, connections beyond the cap. Same contract as
 * sendProxyError: the JSON error body, X-Request-Id, and the proxy's own reason phrase.
 */
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../errors.js';
import { errorBody, reasonPhrase } from './error-response.js';

/** Writes the error response if the socket can still take it, then closes the socket. Never throws. */
export function refuseSocket(socket: Duplex, error: ProxyError, requestId: string): void {
  // Node's server drops its own error listener before it reports a clientError; a reset arriving while
  // we write must not become an unhandled 'error' event.
  socket.on('error', ignore);
  try {
    if (socket.writable) socket.write(rawErrorResponse(error, requestId));
  } catch {
    // nothing more to tell this client
  }
  // As Node does for its own refusals: what was written is with the kernel, which still delivers it.
  socket.destroy();
}

function rawErrorResponse(error: ProxyError, requestId: string): string {
  const body = errorBody(error, requestId);
  const retryAfter = error.retryAfterSeconds === undefined ? '' : `retry-after: ${error.retryAfterSeconds}\r\n`;
  return (
    `HTTP/1.1 ${error.status} ${reasonPhrase(error.status)}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\n${retryAfter}connection: close\r\n\r\n${body}`
  );
}

function ignore(): void {}
