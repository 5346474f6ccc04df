/**
 * Maps a request target to an upstream route and the path to send, refusing anything that could
 * leave the route: absolute-form for another host, `*`, a raw "#", and paths with dot segments or
 * encoded slashes/backslashes, which upstream servers may decode into a different path than we checked.
 */
import { ProxyError } from '../errors.js';

export interface Routable {
  /** "/collaborate" */
  readonly routePath: string;
  /** "/acme/api", or "" */
  readonly targetBasePath: string;
}

export interface ResolvedTarget<R extends Routable> {
  readonly route: R;
  /** Path and query to send upstream, always starting with the target's base path. */
  readonly upstreamPath: string;
  /** The path without its query, for logs (queries may carry secrets). */
  readonly logPath: string;
}

const MAY_HOLD_DOT = /\.|%2e/i;

/** Encoded "/", "\", NUL and any literal backslash (RFC 3986 §3.3; cf. CVE-2021-41773-style traversal). */
const FORBIDDEN_IN_PATH = /%2f|%5c|%00|\\/i;

export function createTargetResolver<R extends Routable>(
  routes: readonly R[],
): (url: string, host: string | undefined) => ResolvedTarget<R> {
  // Longest prefix first, so /api/v2 wins over /api.
  const ordered = [...routes]
    .sort((a, b) => b.routePath.length - a.routePath.length)
    .map((route) => ({ route, prefix: `${route.routePath}/` }));
  const routeList = routes.map((route) => `${route.routePath}/`).join(', ');

  return (url, host) => {
    // RFC 9112 §3.2: no request-target form has a fragment, so a raw "#" is malformed. Refused before
    // anything else: a server that cut it off before resolving dot segments would read "/..#x" as "/..".
    if (url.includes('#')) throw new ProxyError('BAD_REQUEST_TARGET', 'a "#" is not allowed in a request target');
    const target = originForm(url, host);
    const queryStart = target.indexOf('?');
    const path = queryStart === -1 ? target : target.slice(0, queryStart);
    const query = queryStart === -1 ? '' : target.slice(queryStart);
    const route = ordered.find((candidate) => path.startsWith(candidate.prefix) || path === candidate.route.routePath)?.route;
    if (!route) throw new ProxyError('ROUTE_NOT_FOUND', `no upstream is routed at ${truncate(path)}; the routes are ${routeList}`);
    const rest = path.slice(route.routePath.length);
    if (FORBIDDEN_IN_PATH.test(rest) || hasDotSegment(rest)) {
      throw new ProxyError('BAD_REQUEST_TARGET', 'the path contains dot segments, encoded slashes or backslashes, which are refused');
    }
    const upstreamPath = `${route.targetBasePath}${rest}` || '/';
    return { route, upstreamPath: upstreamPath + query, logPath: path };
  };
}

/** Accepts origin-form, and absolute-form only when it names this proxy itself (RFC 9112 §3.2.2). */
function originForm(url: string, host: string | undefined): string {
  if (url.startsWith('/')) return url;
  if (/^https?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ProxyError('BAD_REQUEST_TARGET', 'malformed absolute request target');
    }
    if (host !== undefined && parsed.host.toLowerCase() === host.toLowerCase()) {
      return url.slice(url.indexOf('/', url.indexOf('//') + 2) >>> 0) || '/';
    }
    throw new ProxyError('BAD_REQUEST_TARGET', 'this is not an open proxy: absolute-form requests for other hosts are refused');
  }
  throw new ProxyError('BAD_REQUEST_TARGET', 'request target must be a path');
}

/**
 * The Host header if it names the listener the request came in on (its port, and its address or, on
 * loopback, "localhost"); otherwise undefined. Absolute-form is accepted only for this authority: a
 * client can put any host in both the target and Host (`curl -x`), so matching the two proves nothing.
 * A DNS name of the proxy is not known here, so absolute-form through one is refused; origin-form works.
 */
export function hostNamingListener(
  host: string | undefined,
  localAddress: string | undefined,
  localPort: number | undefined,
): string | undefined {
  if (!host || !localAddress || localPort === undefined) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!match) return undefined;
  const name = (match[1] ?? '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (Number(match[2] ?? 80) !== localPort) return undefined;
  const local = localAddress.replace(/^::ffff:/i, '').toLowerCase();
  const loopback = local === '::1' || local.startsWith('127.');
  return name === local || (loopback && name === 'localhost') ? host : undefined;
}

function hasDotSegment(path: string): boolean {
  if (!MAY_HOLD_DOT.test(path)) return false; // the common case, without splitting the path
  for (const segment of path.split('/')) {
    // Servlet containers drop ";params" before resolving dot segments, so "..;x" climbs like ".." there.
    const decoded = segment.replace(/%2e/gi, '.').replace(/(;|%3b).*$/is, '');
    if (decoded === '.' || decoded === '..') return true;
  }
  return false;
}

function truncate(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}
