/**
 * The one guarded writer of what an upstream answered. Node's writeHead throws on things an upstream can
 * send and undici passes on: a reason phrase with control characters or characters beyond Latin-1 (undici
 * decodes it as UTF-8), a status below 100, a Trailer header on a response that cannot carry trailers.
 * Such a head is refused here (the caller answers 502) or repaired (a Trailer header that cannot be
 * honoured is dropped) and never thrown; a write that fails after the head went out breaks that one
 * response by destroying its socket. The proxy's own error responses go through sendProxyError.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { trailerList } from './header-rules.js';

/**
 * Node's own rule for reason phrases and header values (checkInvalidHeaderChar), which is RFC 9112 §4's
 * reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
 */
const INVALID_REASON_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** `written`: the head is out. `refused`: nothing was written, answer 502. `answered`: the client already has a response, or left. */
export type HeadOutcome = 'written' | 'refused' | 'answered';

export interface UpstreamHead {
  readonly status: number;
  readonly statusMessage: string | undefined;
  /** undici's parsed headers, hop-by-hop headers already removed; may be changed here. */
  readonly headers: Record<string, string | string[]>;
}

/**
 * Writes a final (non-1xx) upstream head. `trailersMayFollow` is false when the body is sent in one piece
 * (a held response): then there will be no trailers whatever the upstream announced.
 */
export function writeUpstreamHead(res: ServerResponse, head: UpstreamHead, trailersMayFollow: boolean): HeadOutcome {
  if (res.headersSent || res.destroyed) return 'answered';
  const { status, statusMessage, headers } = head;
  // RFC 9110 §15: three digits; 1xx were filtered out by the caller, and Node refuses anything above 999.
  if (!(status >= 200 && status <= 999)) return 'refused';
  if (statusMessage && INVALID_REASON_CHAR.test(statusMessage)) return 'refused';
  if (headers.trailer !== undefined && !(trailersMayFollow && mayCarryTrailers(res, status, headers))) delete headers.trailer;
  try {
    // The reason phrase is always passed: Node would otherwise reuse whatever res.statusMessage holds.
    res.writeHead(status, statusMessage || STATUS_CODES[status] || 'Unknown', headers);
  } catch {
    forgetRefusedHead(res);
    return 'refused';
  }
  // HEAD and bodyless statuses: Node writes no body, but flush the head now rather than at end().
  if (res.req.method === 'HEAD') res.flushHeaders();
  return 'written';
}

/** Writes one body chunk; false when the caller should wait for 'drain'. */
export function writeUpstreamChunk(res: ServerResponse, chunk: Buffer): boolean {
  // Writing after end() emits an 'error' on res that nothing listens to, which would crash the process.
  if (res.writableEnded) return true;
  try {
    return res.write(chunk);
  } catch (error) {
    res.destroy(error as Error);
    return true;
  }
}

/** Ends a streamed upstream response, with its trailers when the client takes them. */
export function endUpstreamResponse(res: ServerResponse, rawTrailers: readonly (Buffer | string)[]): void {
  if (res.writableEnded) return;
  try {
    if (rawTrailers.length > 0 && trailersWelcome(res, res.statusCode)) res.addTrailers(trailerList(rawTrailers));
    res.end();
  } catch (error) {
    // An invalid trailer after the head went out: the client must see a broken response, not a complete one.
    res.destroy(error as Error);
  }
}

/** Sends a held (fully buffered) upstream response. */
export function sendUpstreamResponse(res: ServerResponse, head: UpstreamHead, body: Buffer): HeadOutcome {
  const outcome = writeUpstreamHead(res, head, false);
  if (outcome !== 'written') return outcome;
  try {
    res.end(body);
  } catch (error) {
    res.destroy(error as Error);
  }
  return outcome;
}

/**
 * RFC 9110 §6.5: trailers only in a chunked body (RFC 9112 §7.1.2), so never with Content-Length, on HEAD,
 * or on a bodyless status; and only to a client that said it takes them (RFC 9110 §10.1.4 `TE: trailers`),
 * which also rules out HTTP/1.0 clients (no chunked coding).
 */
function mayCarryTrailers(res: ServerResponse, status: number, headers: Record<string, string | string[]>): boolean {
  return headers['content-length'] === undefined && trailersWelcome(res, status);
}

function trailersWelcome(res: ServerResponse, status: number): boolean {
  return status !== 204 && status !== 304 && res.req.method !== 'HEAD' && clientAcceptsTrailers(res.req);
}

function clientAcceptsTrailers(req: IncomingMessage): boolean {
  const te: unknown = req.headers.te;
  if (typeof te !== 'string' || req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false;
  for (const coding of te.split(',')) if (coding.trim().toLowerCase() === 'trailers') return true;
  return false;
}

/**
 * A writeHead that threw has already set res.statusMessage and, for 204/304, marked the response bodyless
 * before it checked the header lines. Undo both, so the 502 written next carries its own reason and its body.
 */
function forgetRefusedHead(res: ServerResponse): void {
  res.statusMessage = '';
  (res as unknown as { _hasBody: boolean })._hasBody = res.req.method !== 'HEAD';
}
