/**
 * Refusals written straight onto a socket, where no ServerResponse exists: requests Node's parser
 * refused (clientError), CONNECT and upgrade requests, connections beyond the cap. The head and body
 * come from errorResponse(), the same as sendProxyError's, with `connection: close` added.
 */
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../errors.js';
import { errorResponse } from '../http/error-response.js';

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

/** The whole HTTP/1.1 response as written to the socket. */
export function rawErrorResponse(error: ProxyError, requestId: string): string {
  const { status, reason, headers, body } = errorResponse(error, requestId);
  const head = [...headers, ['connection', 'close'] as const].map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`;
}

function ignore(): void {}
