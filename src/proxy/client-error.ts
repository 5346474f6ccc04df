/**
 * Requests Node's HTTP parser refused before our handler saw them (headers too large, malformed syntax,
 * headers that never finished arriving). Node would answer them with a bare status line and no body;
 * here they get the proxy's JSON error, a log line with the parser's error code (never the raw bytes,
 * which may carry credentials), and a count under upstream "".
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { refuseSocket } from './raw-refusal.js';

/** A method token and the start of a target, with no line end yet: the request line itself overflowed. */
const UNFINISHED_REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\r\n]*$/;

export interface ClientErrorOptions {
  readonly logger: Logger;
  countRefusal(status: number): void;
}

export function createClientErrorHandler(options: ClientErrorOptions): (error: Error, socket: Duplex) => void {
  const { logger, countRefusal } = options;
  return (error, socket) => {
    const code = (error as { code?: unknown }).code;
    // Further parse errors on a socket we are already closing report the same client twice.
    if (socket.destroyed) return;
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    // A reset or a half-sent response: nothing can be written that the client would read as an answer.
    if (code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      logger.debug({ event: 'client_error', code }, 'client connection failed');
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    const refusal = refusalFor(error);
    const requestId = randomUUID();
    logger.info(
      { event: 'client_error', reqId: requestId, code, status: refusal.status },
      `refused a request the HTTP parser rejected: ${refusal.message}`,
    );
    // A request already being handled (its body broke the parser) is counted by its own handler.
    if (!inFlight) countRefusal(refusal.status);
    refuseSocket(socket, refusal, requestId);
  };
}

export function refusalFor(error: Error): ProxyError {
  const { code, rawPacket } = error as { code?: unknown; rawPacket?: unknown };
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      // Node's header limit counts the request line too; when it ran out inside that line, the target is too long.
      if (Buffer.isBuffer(rawPacket) && UNFINISHED_REQUEST_LINE.test(rawPacket.toString('latin1'))) {
        return new ProxyError('URI_TOO_LONG', 'the request target is longer than the server accepts');
      }
      return new ProxyError('HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ProxyError('REQUEST_TIMEOUT', 'the request headers did not arrive in time');
    default:
      return new ProxyError('BAD_REQUEST', `the request is not valid HTTP/1.1 (${typeof code === 'string' ? code : 'parse error'})`);
  }
}
