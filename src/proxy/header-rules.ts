/**
 * Which headers cross the proxy. Requests lose hop-by-hop headers (RFC 9110 §7.6.1), every credential
 * the client sent (Authorization, Proxy-Authorization, the upstream's `stripHeaders`), and any
 * forwarding headers it claimed, then gain the bearer token and fresh X-Forwarded-* headers.
 */
import type { IncomingMessage } from 'node:http';

/**
 * RFC 9110 §7.6.1 connection-specific fields, plus Proxy-Connection (pre-standard, still sent) and
 * Transfer-Encoding / TE / Trailer framing (RFC 9112 §6.1, §7.4): each hop frames the message itself.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Request headers never forwarded: credentials, and headers the proxy sets itself. */
const REQUEST_DROPPED = new Set([
  'authorization',
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
]);

export interface RequestHeaderRules {
  /** Lowercased extra header names to strip (the upstream's `stripHeaders`). */
  readonly strip: ReadonlySet<string>;
}

/** The headers to send upstream, as undici's flat [name, value, …] list, without the Authorization header. */
export function upstreamRequestHeaders(req: IncomingMessage, rules: RequestHeaderRules, requestId: string): string[] {
  const raw = req.rawHeaders;
  const connectionListed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REQUEST_DROPPED.has(lower) || rules.strip.has(lower)) continue;
    if (connectionListed && connectionListed.has(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  // Only the proxy's own view of the client: its clients are local apps, not proxies we trust, so a
  // client-supplied X-Forwarded-For is a claim anyone can make and is not carried over.
  const clientAddress = req.socket.remoteAddress ?? 'unknown';
  out.push(
    'x-forwarded-for',
    clientAddress,
    'x-forwarded-proto',
    'http',
    'x-forwarded-host',
    req.headers.host ?? '',
    'x-request-id',
    requestId,
  );
  return out;
}

/**
 * Response headers for Node's writeHead, without hop-by-hop headers. Works on undici's parsed object
 * (lowercased names, repeated headers such as Set-Cookie as arrays), which it owns and we may change.
 */
export function withoutHopByHop(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const name of connectionTokens(Array.isArray(connection) ? connection.join(',') : connection) ?? []) delete headers[name];
  }
  for (const name of HOP_BY_HOP) if (name !== 'trailer' && headers[name] !== undefined) delete headers[name];
  return headers;
}

/** Response trailers as Node's addTrailers list. */
export function trailerList(raw: readonly (Buffer | string)[] | null | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (!raw) return out;
  for (let i = 0; i < raw.length; i += 2) out.push([String(raw[i]), String(raw[i + 1])]);
  return out;
}

function connectionTokens(value: string | undefined, into?: Set<string>): Set<string> | undefined {
  if (!value) return into;
  const set = into ?? new Set<string>();
  for (const token of value.split(',')) {
    const trimmed = token.trim().toLowerCase();
    if (trimmed) set.add(trimmed);
  }
  return set;
}
