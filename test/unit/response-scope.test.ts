import { describe, expect, it } from 'vitest';
import { scopeResponseHeaders, type ResponseScope } from '../../src/proxy/response-scope.js';

const collaborate: ResponseScope = {
  routePath: '/collaborate',
  targetOrigin: 'https://acme.example.com',
  targetBasePath: '/acme/api',
  cookies: 'scope',
};
const rootTarget: ResponseScope = { routePath: '/up', targetOrigin: 'http://127.0.0.1:4000', targetBasePath: '', cookies: 'scope' };

type Headers = Record<string, string | string[]>;

function scoped(headers: Headers, scope: ResponseScope = collaborate): Headers {
  scopeResponseHeaders(headers, scope);
  return headers;
}

function scopedCookie(cookie: string, scope: ResponseScope = collaborate): string | string[] | undefined {
  return scoped({ 'set-cookie': cookie }, scope)['set-cookie'];
}

function scopedLocation(location: string, scope: ResponseScope = collaborate): string | string[] | undefined {
  return scoped({ location }, scope).location;
}

describe('scopeResponseHeaders: Set-Cookie with cookies: scope', () => {
  it('confines Path=/ and a missing Path to the route, with a trailing "/" so /collaborate-two never gets it', () => {
    expect(scopedCookie('sid=1; Path=/')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; HttpOnly')).toBe('sid=1; HttpOnly; Path=/collaborate/');
    expect(scopedCookie('sid=1')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/', rootTarget)).toBe('sid=1; Path=/up/');
  });

  it('maps a Path under the base path to the same rest under the route', () => {
    expect(scopedCookie('sid=1; Path=/acme/api/sites')).toBe('sid=1; Path=/collaborate/sites');
    expect(scopedCookie('sid=1; Path=/acme/api/a/b/')).toBe('sid=1; Path=/collaborate/a/b/');
    expect(scopedCookie('sid=1; Path=/acme/api')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/acme/api/')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/x/y', rootTarget)).toBe('sid=1; Path=/up/x/y');
  });

  it('confines a Path outside the base path, and an empty or relative one (the default path, RFC 6265 §5.2.4), to the route', () => {
    expect(scopedCookie('sid=1; Path=/other')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/acme/apix')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/acme')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=acme/api/x')).toBe('sid=1; Path=/collaborate/');
  });

  it('drops Domain, and reads attribute names case-insensitively with surrounding spaces (RFC 6265 §5.2)', () => {
    expect(scopedCookie('sid=1; Domain=acme.example.com; Path=/acme/api/x')).toBe('sid=1; Path=/collaborate/x');
    expect(scopedCookie('sid=1;DOMAIN=.example.com;PATH=/')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1;  pAtH =  /acme/api/x ; domain ; Secure')).toBe('sid=1; Secure; Path=/collaborate/x');
  });

  it('uses the last Path as a cookie jar does (RFC 6265 §5.3) and leaves exactly one', () => {
    expect(scopedCookie('sid=1; Path=/acme/api/a; Path=/')).toBe('sid=1; Path=/collaborate/');
    expect(scopedCookie('sid=1; Path=/; Path=/acme/api/a')).toBe('sid=1; Path=/collaborate/a');
    expect(scopedCookie('sid=1; Path=/acme/api/a; Path=relative')).toBe('sid=1; Path=/collaborate/');
  });

  it('keeps the name, value and every other attribute byte for byte', () => {
    const cookie =
      'SESSION=a%3Db==/x"y; Expires=Wed, 21 Oct 2026 07:28:00 GMT;  Secure ;HttpOnly; SameSite=Lax; Max-Age=0; Priority=High; Path=/';
    expect(scopedCookie(cookie)).toBe(
      'SESSION=a%3Db==/x"y; Expires=Wed, 21 Oct 2026 07:28:00 GMT;  Secure ;HttpOnly; SameSite=Lax; Max-Age=0; Priority=High; Path=/collaborate/',
    );
    // "Path=" inside the name=value pair, or a cookie named "path", is the cookie, not an attribute.
    expect(scopedCookie('x=Path=/; HttpOnly')).toBe('x=Path=/; HttpOnly; Path=/collaborate/');
    expect(scopedCookie('path=/; Secure')).toBe('path=/; Secure; Path=/collaborate/');
  });

  it('scopes each of several Set-Cookie headers, keeping their order', () => {
    const headers = scoped({ 'set-cookie': ['a=1; Path=/', 'b=2; Path=/acme/api/x; Domain=acme.example.com', 'c=3'] });
    expect(headers['set-cookie']).toEqual(['a=1; Path=/collaborate/', 'b=2; Path=/collaborate/x', 'c=3; Path=/collaborate/']);
  });

  it('drops the obsolete Set-Cookie2 rather than let it through unscoped', () => {
    expect(scoped({ 'set-cookie2': 'a=1; Version=1; Path=/', 'content-type': 'text/plain' })).toEqual({ 'content-type': 'text/plain' });
  });
});

describe('scopeResponseHeaders: cookies: strip and pass', () => {
  it('strip removes Set-Cookie (one or several) and Set-Cookie2', () => {
    const strip: ResponseScope = { ...collaborate, cookies: 'strip' };
    expect(scoped({ 'set-cookie': 'a=1; Path=/', 'x-kept': '1' }, strip)).toEqual({ 'x-kept': '1' });
    expect(scoped({ 'set-cookie': ['a=1', 'b=2'], 'set-cookie2': 'c=3' }, strip)).toEqual({});
  });

  it('pass leaves cookies untouched, Domain and Path included', () => {
    const pass: ResponseScope = { ...collaborate, cookies: 'pass' };
    const headers = { 'set-cookie': ['a=1; Path=/; Domain=acme.example.com', 'b=2'], 'set-cookie2': 'c=3' };
    expect(scoped(structuredClone(headers), pass)).toEqual(headers);
  });
});

describe('scopeResponseHeaders: Location and Content-Location', () => {
  it('maps a root-relative reference under the base path to the route, query and fragment kept', () => {
    expect(scopedLocation('/acme/api/sites/1?x=1&next=/a#top')).toBe('/collaborate/sites/1?x=1&next=/a#top');
    expect(scopedLocation('/acme/api')).toBe('/collaborate');
    expect(scopedLocation('/acme/api/')).toBe('/collaborate/');
    expect(scopedLocation('/acme/api?page=2')).toBe('/collaborate?page=2');
    expect(scopedLocation('/login?next=/x', rootTarget)).toBe('/up/login?next=/x');
    expect(scopedLocation('/', rootTarget)).toBe('/up/');
  });

  it("maps an absolute reference to the upstream's own origin under the base path to a path under the route", () => {
    expect(scopedLocation('https://acme.example.com/acme/api/sites?x=1')).toBe('/collaborate/sites?x=1');
    expect(scopedLocation('https://acme.example.com:443/acme/api/x')).toBe('/collaborate/x');
    expect(scopedLocation('HTTPS://ACME.Example.COM/acme/api/x')).toBe('/collaborate/x');
    expect(scopedLocation('//acme.example.com/acme/api/x')).toBe('/collaborate/x');
    expect(scopedLocation('http://127.0.0.1:4000/a/b', rootTarget)).toBe('/up/a/b');
  });

  it("points a root-relative reference outside the base path at the upstream's origin, never at another route", () => {
    expect(scopedLocation('/login?next=1')).toBe('https://acme.example.com/login?next=1');
    expect(scopedLocation('/acme/apix')).toBe('https://acme.example.com/acme/apix');
    expect(scopedLocation('/up/x')).toBe('https://acme.example.com/up/x');
    // Dot segments, encoded ones too, are resolved before the base path is checked.
    expect(scopedLocation('/acme/api/../../up/x')).toBe('https://acme.example.com/up/x');
    expect(scopedLocation('/acme/api/%2e%2e/%2E%2E/up/x')).toBe('https://acme.example.com/up/x');
    // Absolute at the upstream's origin but outside the base path: already points at the upstream.
    expect(scopedLocation('https://acme.example.com/login')).toBe('https://acme.example.com/login');
  });

  it('leaves other origins, relative references, other schemes and malformed values as sent', () => {
    for (const location of [
      'https://idp.example.com/authorize?x=1',
      'http://acme.example.com/acme/api/x',
      'https://acme.example.com:8443/acme/api/x',
      '//idp.example.com/acme/api/x',
      '/\\idp.example.com/acme/api/x',
      'sites/2',
      '../x',
      '?page=2',
      '',
      'mailto:help@acme.example.com',
      'ftp://acme.example.com/acme/api/x',
      'https://[bad/acme/api',
    ]) {
      expect(scopedLocation(location), location).toBe(location);
    }
  });

  it('maps Content-Location the same way, and every value of a repeated header', () => {
    expect(scoped({ 'content-location': '/acme/api/doc/1' })['content-location']).toBe('/collaborate/doc/1');
    expect(scoped({ location: ['/acme/api/a', '/b'] }).location).toEqual(['/collaborate/a', 'https://acme.example.com/b']);
  });

  it('maps Location whatever the cookie policy', () => {
    expect(scopedLocation('/acme/api/x', { ...collaborate, cookies: 'pass' })).toBe('/collaborate/x');
    expect(scopedLocation('/acme/api/x', { ...collaborate, cookies: 'strip' })).toBe('/collaborate/x');
  });

  it('leaves a response without these headers exactly as it was (no keys added)', () => {
    const headers = { 'content-type': 'application/json', 'content-length': '2' };
    expect(Object.keys(scoped({ ...headers }))).toEqual(Object.keys(headers));
    expect(scoped({ ...headers })).toEqual(headers);
  });
});
