/**
 * Keeps upstreams apart in the app's cookie jar and redirects: every upstream shares the proxy's one
 * origin from the app's side. (Being written: see issue 9 item 7.)
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

/** Rewrites Set-Cookie and Location in undici's parsed response headers, in place. */
export function scopeResponseHeaders(_headers: Record<string, string | string[]>, _scope: ResponseScope): void {}
