/**
 * Upstream answers to a WebSocket handshake, written as HTTP/1.1 straight onto the client's socket (an
 * upgrade request has no ServerResponse): the 101 that switches the connection over, and any other answer,
 * which ends the connection. Heads are checked with Node's own header rules first, so a head Node would
 * refuse to write is refused here too (the caller answers 502) rather than reach the client.
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HeldResponse } from '../forward.js';
import { withoutHopByHop } from '../header-rules.js';
import { scopeResponseHeaders, type ResponseScope } from '../response-scope.js';

/** RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ). */
const INVALID_REASON_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Headers that describe the upstream hop's message framing, not the switched connection: dropped from a
 * 101. Connection and Upgrade stay (the client checks them), as do Sec-WebSocket-Accept, -Protocol and
 * -Extensions, which are the handshake's answer.
 */
const NOT_IN_SWITCH = new Set([
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'te',
  'trailer',
  'proxy-authenticate',
]);

/** How long a client that got a final (non-101) answer may keep its half of the connection open. */
const LINGER_MS = 5_000;

export type Headers = Record<string, string | string[]>;

/** The 101 head for the client, or undefined when it cannot be written. */
export function switchingProtocolsHead(headers: Headers, scope: ResponseScope): string | undefined {
  const kept: Headers = {};
  for (const [name, value] of Object.entries(headers)) if (!NOT_IN_SWITCH.has(name)) kept[name] = value;
  scopeResponseHeaders(kept, scope);
  return formatHead(101, 'Switching Protocols', kept);
}

/**
 * The head of a final answer, with `connection: close`; undefined when it cannot be written. `bodyLength`
 * replaces the upstream's Content-Length for a held body; without one the upstream's length is kept, or
 * the body ends when the connection does (RFC 9112 §6.3).
 */
export function finalResponseHead(
  status: number,
  statusMessage: string | undefined,
  headers: Headers,
  scope: ResponseScope,
  bodyLength?: number,
): string | undefined {
  if (!(status >= 200 && status <= 999)) return undefined;
  if (statusMessage && INVALID_REASON_CHAR.test(statusMessage)) return undefined;
  const outgoing = withoutHopByHop(headers);
  scopeResponseHeaders(outgoing, scope);
  if (bodyLength !== undefined) outgoing['content-length'] = String(bodyLength);
  outgoing.connection = 'close';
  return formatHead(status, statusMessage || STATUS_CODES[status] || 'Unknown', outgoing);
}

/** Writes a held (complete) upstream answer and ends the connection; false when its head cannot be written. */
export function sendHeldOnSocket(socket: Duplex, held: HeldResponse, scope: ResponseScope): boolean {
  const head = finalResponseHead(held.status, held.statusMessage, held.headers, scope, held.body.length);
  if (head === undefined) return false;
  try {
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), held.body]));
  } catch {
    // the client went away; nothing more to tell it
  }
  endAnswered(socket);
  return true;
}

/** Ends the client's connection after a final answer: no more requests come over it. Never throws. */
export function endAnswered(socket: Duplex): void {
  try {
    socket.end();
    // Read (and drop) whatever the client still sends, so its FIN is seen and the socket closes.
    socket.resume();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  } catch {
    socket.destroy();
  }
}

function formatHead(status: number, reason: string, headers: Headers): string | undefined {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  try {
    for (const [name, value] of Object.entries(headers)) {
      validateHeaderName(name);
      for (const item of Array.isArray(value) ? value : [value]) {
        validateHeaderValue(name, item);
        head += `${name}: ${item}\r\n`;
      }
    }
  } catch {
    return undefined;
  }
  return `${head}\r\n`;
}
