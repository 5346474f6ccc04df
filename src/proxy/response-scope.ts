/**
 * Keeps upstreams apart in the app's cookie jar and redirects. From the app's side every upstream shares
 * the proxy's one origin (http://127.0.0.1:8080/<upstream>/…), so an upstream's `Set-Cookie: …; Path=/`
 * would be sent to every other upstream, and its `Location: /x` would lead a following client to whichever
 * route owns /x, with that route's token attached.
 *
 * Cookies (policy `scope`, like nginx `proxy_cookie_path` with `proxy_cookie_domain off`): each Path is
 * mapped under the route and Domain is dropped; name, value and every other attribute are kept
 * byte-exact. `strip` removes Set-Cookie, `pass` leaves it.
 *
 * Location and Content-Location (like nginx `proxy_redirect default`, which rewrites the target's
 * origin + base path to the route): a reference to the upstream's own origin under its base path, absolute
 * or root-relative, becomes the same path under the route. nginx leaves a root-relative Location as it
 * is, inside or outside the base path; here one outside the base path is made absolute at the upstream's
 * origin instead, which is what the upstream meant (RFC 9110 §10.2.2: resolved against its own target URI)
 * and which cannot reach another route. Other origins and relative references ("x/y") are left as sent.
 * Redirects are never followed here; the client decides.
 */
export interface ResponseScope {
  /** The route prefix, e.g. "/collaborate". */
  readonly routePath: string;
  /** scheme://host:port of the upstream. */
  readonly targetOrigin: string;
  /** The upstream's base path, "" for the root. */
  readonly targetBasePath: string;
  readonly cookies: 'scope' | 'strip' | 'pass';
}

const SLASH = 0x2f;
const HTTP_SCHEME = /^https?:/i;

/** Rewrites Set-Cookie and Location in undici's parsed response headers, in place. */
export function scopeResponseHeaders(headers: Record<string, string | string[]>, scope: ResponseScope): void {
  // Each header is looked at only when present: a response without them costs a few property reads.
  if (scope.cookies !== 'pass') {
    const setCookie = headers['set-cookie'];
    if (setCookie !== undefined) {
      if (scope.cookies === 'strip') delete headers['set-cookie'];
      else
        headers['set-cookie'] = Array.isArray(setCookie)
          ? setCookie.map((cookie) => scopeCookie(cookie, scope))
          : scopeCookie(setCookie, scope);
    }
    // RFC 2965's Set-Cookie2 (obsoleted by RFC 6265, still read by java.net.CookieManager) has its own
    // grammar; rather than scope it, it is dropped.
    if (headers['set-cookie2'] !== undefined) delete headers['set-cookie2'];
  }
  const location = headers.location;
  if (location !== undefined) headers.location = mapEach(location, scope);
  const contentLocation = headers['content-location'];
  if (contentLocation !== undefined) headers['content-location'] = mapEach(contentLocation, scope);
}

/**
 * One Set-Cookie value with its Path mapped under the route and Domain removed. The name=value pair
 * (everything before the first ";", RFC 6265 §5.2) and every other attribute are kept byte for byte;
 * the one Path is appended last, since the last Path attribute is the one that counts (§5.3 step 7).
 */
function scopeCookie(cookie: string, scope: ResponseScope): string {
  const firstSemicolon = cookie.indexOf(';');
  if (firstSemicolon === -1) return `${cookie}; Path=${cookiePath(undefined, scope)}`;
  let upstreamPath: string | undefined;
  let kept = '';
  // RFC 6265 §5.2 trims WSP around names and values; trim() covers that (undici refuses control characters).
  for (const attribute of cookie.slice(firstSemicolon + 1).split(';')) {
    const equals = attribute.indexOf('=');
    const name = (equals === -1 ? attribute : attribute.slice(0, equals)).trim().toLowerCase();
    if (name === 'domain') continue; // the app talks to 127.0.0.1; the upstream's domain means nothing there
    if (name === 'path') {
      // §5.2.4: an empty Path or one not starting with "/" means the default path.
      const value = equals === -1 ? '' : attribute.slice(equals + 1).trim();
      upstreamPath = value.charCodeAt(0) === SLASH ? value : undefined;
      continue;
    }
    kept += `;${attribute}`;
  }
  return `${cookie.slice(0, firstSemicolon)}${kept}; Path=${cookiePath(upstreamPath, scope)}`;
}

/**
 * The Path the app's cookie jar should see. A Path under the base path keeps its rest under the route;
 * anything else (no Path, the default path, a Path outside the base path) is confined to the whole route.
 * That is `routePath + "/"` rather than `routePath`: by RFC 6265 §5.1.4 "/collaborate" would not match
 * "/collaborate-two" either, but a jar that compares plain prefixes would send it there.
 * Paths are compared as strings, as cookie jars do (§5.1.4), so a dotted Path stays under the route prefix.
 */
function cookiePath(upstreamPath: string | undefined, scope: ResponseScope): string {
  const base = scope.targetBasePath;
  if (upstreamPath !== undefined && upstreamPath.length > base.length + 1 && upstreamPath.startsWith(`${base}/`)) {
    return scope.routePath + upstreamPath.slice(base.length);
  }
  return `${scope.routePath}/`;
}

function mapEach(value: string | string[], scope: ResponseScope): string | string[] {
  return Array.isArray(value) ? value.map((one) => scopeLocation(one, scope)) : scopeLocation(value, scope);
}

function scopeLocation(value: string, scope: ResponseScope): string {
  const rootRelative = value.charCodeAt(0) === SLASH;
  // Relative references ("x/y", "?q") resolve against the app's request URI, already under the route.
  if (!rootRelative && !HTTP_SCHEME.test(value)) return value;
  let url: URL;
  try {
    // Parsed as a client would (WHATWG URL): "//host" and "/\host" name other hosts, and dot segments,
    // "%2e" ones included, are resolved, so "/base/../other" cannot pass as a path under the base.
    url = new URL(value, scope.targetOrigin);
  } catch {
    return value;
  }
  if (url.origin !== scope.targetOrigin) return value;
  const base = scope.targetBasePath;
  const path = url.pathname;
  if (path === base || path.startsWith(`${base}/`)) return scope.routePath + path.slice(base.length) + url.search + url.hash;
  return rootRelative ? url.href : value;
}
