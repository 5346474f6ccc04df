/**
 * Whether a request to a URL goes through a forward proxy, decided from the environment the way curl and
 * undici's EnvHttpProxyAgent read it, so that an environment that works for curl in the same pod works for
 * the sidecar. Pure: the caller passes the environment and builds the connection.
 *
 * Which variable:
 * - https: targets use `https_proxy`, else `HTTPS_PROXY`. They never fall back to `http_proxy`: curl, Go and
 *   Python do not either (undici's EnvHttpProxyAgent does; we follow the majority, so a proxy meant for plain
 *   HTTP is never handed TLS traffic by surprise).
 * - http: targets use `http_proxy`, else `HTTP_PROXY`. curl ignores the uppercase form because a CGI script
 *   gets `HTTP_PROXY` from a client's `Proxy:` request header (httpoxy, CVE-2016-5385). The sidecar is never
 *   run as CGI: its environment comes from whoever deploys it, so it accepts both, as undici does.
 * - The lowercase form wins when both are set. An empty (or blank) value counts as unset, as in curl.
 * - `ALL_PROXY` is ignored (undici ignores it too; it often names a SOCKS proxy meant for other tools).
 * - Other target schemes are never proxied.
 *
 * The proxy value: without a scheme (`proxy:3128`) it means `http://`. Only http:// and https:// proxies are
 * supported: anything else (socks5://) throws an Error naming the variable. A URL without a port keeps it
 * empty: the scheme's default (80/443), as undici reads it (curl would use 1080). The URL is returned as
 * parsed, credentials included; no string built here contains the value, so no password leaks through a
 * reason or an error message.
 *
 * NO_PROXY (`no_proxy` wins over `NO_PROXY`), entries separated by commas and/or whitespace, case-insensitive:
 * - the whole value `*` disables proxying (as in curl and undici, `*` inside a list matches nothing);
 * - a hostname entry matches that host and every subdomain of it; a leading `.` or `*.` is dropped first, so
 *   `example.com`, `.example.com` and `*.example.com` all match both `example.com` and `api.example.com`
 *   (undici's rule; curl drops a leading `.` the same way) but never `notexample.com`. A trailing dot
 *   (`example.com.`) is ignored on both sides;
 * - an IPv4 or IPv6 literal (`10.1.2.3`, `::1`, `[::1]`) matches that address only, compared as an address
 *   (`0:0:0:0:0:0:0:1` is `::1`), never as a suffix of a longer address;
 * - a CIDR range (`10.0.0.0/8`, `fd00::/8`, `[fd00::]/8`) matches the addresses in it (as in curl ≥ 7.86);
 *   an address entry only matches targets of its own family (`10.0.0.0/8` does not hold `[::ffff:10.0.0.1]`);
 * - `entry:port` (`example.com:8443`, `[::1]:8080`, `10.1.2.3:80`) applies only to that port, where a target
 *   without a port has its scheme's default (80, 443);
 * - an entry that is none of these (a bad prefix length, an empty host) is ignored, as curl ignores it.
 * Names are never resolved: an IP or CIDR entry matches only targets written as an address.
 */
import { BlockList, isIP, isIPv6 } from 'node:net';

export type EnvProxyDecision =
  { readonly kind: 'direct'; readonly reason: string } | { readonly kind: 'proxy'; readonly url: URL; readonly variable: string };

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/** The proxy `env` asks for on the way to `target`, or why there is none. Throws when the proxy variable that applies is unusable. */
export function envProxyFor(target: URL, env: NodeJS.ProcessEnv): EnvProxyDecision {
  const scheme = target.protocol;
  if (scheme !== 'http:' && scheme !== 'https:') return { kind: 'direct', reason: `${scheme} targets are never proxied` };
  const name = scheme === 'https:' ? 'https_proxy' : 'http_proxy';
  const found = firstSet(env, name, name.toUpperCase());
  if (!found) return { kind: 'direct', reason: noProxyVariableReason(scheme, env) };
  // Parsed before NO_PROXY is consulted, so an unusable proxy value is reported whatever the first target is.
  const url = parseProxyValue(found.variable, found.value);

  const noProxy = firstSet(env, 'no_proxy', 'NO_PROXY');
  if (noProxy) {
    const excluded = noProxyMatch(noProxy.value, target);
    if (excluded !== undefined) {
      const reason = excluded === '*' ? `${noProxy.variable} is "*"` : `${noProxy.variable} entry "${excluded}" matches`;
      return { kind: 'direct', reason };
    }
  }
  return { kind: 'proxy', url, variable: found.variable };
}

function firstSet(env: NodeJS.ProcessEnv, ...names: string[]): { variable: string; value: string } | undefined {
  for (const variable of names) {
    const value = env[variable]?.trim();
    if (value) return { variable, value };
  }
  return undefined;
}

function noProxyVariableReason(scheme: string, env: NodeJS.ProcessEnv): string {
  if (scheme === 'http:') return 'no http_proxy or HTTP_PROXY set';
  const httpOnly = firstSet(env, 'http_proxy', 'HTTP_PROXY');
  const note = httpOnly ? ` (${httpOnly.variable} applies to http: targets only, as in curl)` : '';
  return `no https_proxy or HTTPS_PROXY set${note}`;
}

function parseProxyValue(variable: string, value: string): URL {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw new Error(`${variable}: proxy scheme "${scheme}://" is not supported; only http:// and https:// proxies are`);
  }
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `http://${value}` : value);
  } catch {
    // The value itself stays out of the message: it may carry a password.
    throw new Error(`${variable} is not a valid proxy URL (expected http://host:port or https://host:port)`);
  }
  return url;
}

/** The NO_PROXY entry (as written) that excludes `target`, `'*'` for the whole-value wildcard, or undefined. */
function noProxyMatch(value: string, target: URL): string | undefined {
  if (value === '*') return '*';
  const host = stripTrailingDot(target.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase());
  const port = Number(target.port) || DEFAULT_PORTS[target.protocol] || 0;
  const family = isIP(host);
  for (const written of value.split(/[\s,]+/)) {
    if (!written) continue;
    const entry = parseEntry(written.toLowerCase());
    if (entry && (entry.port === undefined || entry.port === port) && entryMatches(entry, host, family)) return written;
  }
  return undefined;
}

/** A name entry matches names only, an address entry addresses of its own family only (IPv4 never matches as ::ffff:a.b.c.d). */
function entryMatches(entry: NoProxyEntry, host: string, family: number): boolean {
  if (entry.kind === 'name') return family === 0 && (host === entry.name || host.endsWith(`.${entry.name}`));
  return family === entry.family && entry.addresses.check(host, ipFamily(family));
}

type NoProxyEntry =
  | { readonly kind: 'name'; readonly name: string; readonly port?: number }
  | { readonly kind: 'address'; readonly family: number; readonly addresses: BlockList; readonly port?: number };

function parseEntry(entry: string): NoProxyEntry | undefined {
  const slash = entry.indexOf('/');
  if (slash >= 0) return parseCidr(entry.slice(0, slash).replace(/^\[(.*)\]$/, '$1'), entry.slice(slash + 1));
  if (isIPv6(entry)) return addressEntry(entry);
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return isIPv6(bracketed[1] ?? '') ? addressEntry(bracketed[1] ?? '', bracketed[2]) : undefined;
  const withPort = /^(.+):(\d+)$/.exec(entry);
  const host = withPort?.[1] ?? entry;
  const portText = withPort?.[2];
  if (isIP(host)) return addressEntry(host, portText);
  const name = stripTrailingDot(host.replace(/^\*?\./, ''));
  if (!name || name.includes(':') || name.includes('*')) return undefined;
  return { kind: 'name', name, ...portOf(portText) };
}

function parseCidr(address: string, prefixText: string): NoProxyEntry | undefined {
  const family = isIP(address);
  if (family === 0 || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  const addresses = new BlockList();
  addresses.addSubnet(address, prefix, ipFamily(family));
  return { kind: 'address', family, addresses };
}

function addressEntry(address: string, portText?: string): NoProxyEntry {
  const family = isIP(address);
  const addresses = new BlockList();
  addresses.addAddress(address, ipFamily(family));
  return { kind: 'address', family, addresses, ...portOf(portText) };
}

function portOf(portText: string | undefined): { port?: number } {
  return portText === undefined ? {} : { port: Number(portText) };
}

function stripTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function ipFamily(family: number): 'ipv4' | 'ipv6' {
  return family === 6 ? 'ipv6' : 'ipv4';
}
