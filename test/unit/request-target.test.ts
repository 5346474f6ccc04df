import { describe, expect, it } from 'vitest';
import { ProxyError, type ErrorCode } from '../../src/errors.js';
import { createTargetResolver, hostNamingListener, type Routable } from '../../src/proxy/request-target.js';

interface TestRoute extends Routable {
  readonly name: string;
}

const routes: TestRoute[] = [
  { name: 'collaborate', routePath: '/collaborate', targetBasePath: '/acme/api' },
  { name: 'up', routePath: '/up', targetBasePath: '' },
  { name: 'upx', routePath: '/upx', targetBasePath: '/x-base' },
  { name: 'api', routePath: '/api', targetBasePath: '/v1' },
  { name: 'api-v2', routePath: '/api/v2', targetBasePath: '/v2' },
];

const HOST = '127.0.0.1:8080';
const resolve = createTargetResolver(routes);

/** The code of the ProxyError that refuses `url`; `host: null` stands for a request without a Host header. */
function refusal(url: string, host: string | null = HOST): ErrorCode {
  try {
    resolve(url, host ?? undefined);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return (error as ProxyError).code;
  }
  throw new Error(`${url} was accepted`);
}

describe('createTargetResolver: routing', () => {
  it('maps a route prefix to the target base path and keeps the rest of the path', () => {
    expect(resolve('/collaborate/3/sites', HOST)).toEqual({
      route: routes[0],
      upstreamPath: '/acme/api/3/sites',
      logPath: '/collaborate/3/sites',
    });
  });

  it('keeps the query for the upstream and leaves it out of the log path', () => {
    const target = resolve('/collaborate/3/sites?limit=5&next=%2Fa%2F..%5C&x=../..', HOST);
    expect(target.upstreamPath).toBe('/acme/api/3/sites?limit=5&next=%2Fa%2F..%5C&x=../..');
    expect(target.logPath).toBe('/collaborate/3/sites');
  });

  it('the longest matching prefix wins, whatever the declaration order', () => {
    expect(resolve('/api/v2/items', HOST).route.name).toBe('api-v2');
    expect(resolve('/api/v2/items', HOST).upstreamPath).toBe('/v2/items');
    expect(resolve('/api/v1/items', HOST).route.name).toBe('api');
    expect(resolve('/api/v1/items', HOST).upstreamPath).toBe('/v1/v1/items');
    const reversed = createTargetResolver([...routes].reverse());
    expect(reversed('/api/v2/items', HOST).route.name).toBe('api-v2');
  });

  it('matches whole segments only: /up does not serve /upx, and /upxx belongs to nobody', () => {
    expect(resolve('/up/a', HOST).route.name).toBe('up');
    expect(resolve('/upx/a', HOST).route.name).toBe('upx');
    expect(resolve('/upx/a', HOST).upstreamPath).toBe('/x-base/a');
    expect(refusal('/upxx/a')).toBe('ROUTE_NOT_FOUND');
    expect(refusal('/collaboratex')).toBe('ROUTE_NOT_FOUND');
    expect(refusal('/api2/v2')).toBe('ROUTE_NOT_FOUND');
  });

  it('the route root itself maps to the base path (or / when the base path is empty), query included', () => {
    expect(resolve('/collaborate', HOST).upstreamPath).toBe('/acme/api');
    expect(resolve('/collaborate/', HOST).upstreamPath).toBe('/acme/api/');
    expect(resolve('/up', HOST).upstreamPath).toBe('/');
    expect(resolve('/up?x=1', HOST).upstreamPath).toBe('/?x=1');
    expect(resolve('/up/', HOST).upstreamPath).toBe('/');
  });

  it('answers 404 for the proxy root and unknown prefixes', () => {
    expect(refusal('/')).toBe('ROUTE_NOT_FOUND');
    expect(refusal('/?x=1')).toBe('ROUTE_NOT_FOUND');
    expect(refusal('/unknown/collaborate/x')).toBe('ROUTE_NOT_FOUND');
    const error = (() => {
      try {
        resolve('/nope/x?secret=1', HOST);
      } catch (caught) {
        return caught as ProxyError;
      }
      throw new Error('accepted');
    })();
    expect(error.status).toBe(404);
    expect(error.message).not.toContain('secret');
  });

  it('is case-sensitive about route prefixes (paths are case-sensitive, RFC 3986 §6.2.2.1)', () => {
    expect(refusal('/Collaborate/x')).toBe('ROUTE_NOT_FOUND');
  });
});

describe('createTargetResolver: paths that could escape the route are refused', () => {
  const escapes = [
    '/collaborate/../admin',
    '/collaborate/..',
    '/collaborate/a/../../b',
    '/collaborate/./x',
    '/collaborate/a/.',
    '/collaborate/%2e%2e/admin',
    '/collaborate/%2E%2E/admin',
    '/collaborate/%2e%2E/admin',
    '/collaborate/.%2e/admin',
    '/collaborate/%2e./admin',
    '/collaborate/%2e/admin',
    '/collaborate/a%2f..%2f..%2fadmin',
    '/collaborate/a%2F..',
    '/collaborate/..%5cadmin',
    '/collaborate/a%5C..%5Cb',
    '/collaborate/a\\..\\b',
    '/collaborate/a\\b',
    '/collaborate/a%00b',
    '/collaborate/..;/admin',
    '/collaborate/a/..;jsessionid=1/b',
    '/collaborate/%2e%2e;x/admin',
    '/collaborate/..%3b/admin',
    '/up/..',
    '/api/v2/../../x',
  ];
  for (const url of escapes) {
    it(`${url} → 400 BAD_REQUEST_TARGET`, () => {
      expect(refusal(url)).toBe('BAD_REQUEST_TARGET');
      try {
        resolve(url, HOST);
      } catch (error) {
        expect((error as ProxyError).status).toBe(400);
      }
    });
  }

  // A server that drops the "fragment" before resolving dot segments would climb out of the route.
  const withFragment = [
    '/collaborate/..#x',
    '/collaborate/%2e%2e#',
    '/collaborate/a/..#/b',
    '/collaborate/x#/../..',
    '/collaborate/x?q=1#f',
    '/up#',
    '/nope#x',
  ];
  for (const url of withFragment) {
    it(`${url} → 400 BAD_REQUEST_TARGET: a raw "#" is not valid in a request target (RFC 9112 §3.2)`, () => {
      expect(refusal(url)).toBe('BAD_REQUEST_TARGET');
    });
  }

  it('refuses a "#" in an absolute-form target too', () => {
    expect(refusal(`http://${HOST}/collaborate/..#x`)).toBe('BAD_REQUEST_TARGET');
  });

  it('allows names that merely contain dots, and encoded characters that cannot change the path', () => {
    expect(resolve('/collaborate/files/report..v2.pdf', HOST).upstreamPath).toBe('/acme/api/files/report..v2.pdf');
    expect(resolve('/collaborate/...', HOST).upstreamPath).toBe('/acme/api/...');
    expect(resolve('/collaborate/.well-known/x', HOST).upstreamPath).toBe('/acme/api/.well-known/x');
    expect(resolve('/collaborate/a%20b/%C3%A9', HOST).upstreamPath).toBe('/acme/api/a%20b/%C3%A9');
    expect(resolve('/collaborate/a;b=c', HOST).upstreamPath).toBe('/acme/api/a;b=c');
    // An encoded "#" is path data, not a fragment delimiter.
    expect(resolve('/collaborate/a%23b', HOST).upstreamPath).toBe('/acme/api/a%23b');
  });
});

describe('createTargetResolver: request-target forms (RFC 9112 §3.2)', () => {
  it('accepts absolute-form naming this proxy itself, case-insensitively', () => {
    expect(resolve(`http://${HOST}/collaborate/3/sites?x=1`, HOST).upstreamPath).toBe('/acme/api/3/sites?x=1');
    expect(resolve('HTTP://LOCALHOST:8080/up/a', 'localhost:8080').upstreamPath).toBe('/a');
  });

  it('still applies the path checks to absolute-form targets', () => {
    expect(refusal(`http://${HOST}/collaborate/%2e%2e/x`)).toBe('BAD_REQUEST_TARGET');
    expect(refusal(`http://${HOST}/nope`)).toBe('ROUTE_NOT_FOUND');
    expect(refusal(`http://${HOST}`)).toBe('ROUTE_NOT_FOUND');
  });

  it('refuses absolute-form for any other host: this is not an open proxy', () => {
    expect(refusal('http://example.com/collaborate/x')).toBe('BAD_REQUEST_TARGET');
    expect(refusal('https://acme.highq.com/acme/api/3/sites')).toBe('BAD_REQUEST_TARGET');
    expect(refusal(`http://127.0.0.1:8081/collaborate/x`)).toBe('BAD_REQUEST_TARGET');
    expect(refusal(`http://${HOST}@evil.example/collaborate/x`)).toBe('BAD_REQUEST_TARGET');
    expect(refusal(`http://${HOST}/collaborate/x`, null)).toBe('BAD_REQUEST_TARGET');
    expect(refusal('http://[bad/collaborate/x')).toBe('BAD_REQUEST_TARGET');
  });

  it('refuses asterisk-form, authority-form and other non-path targets', () => {
    expect(refusal('*')).toBe('BAD_REQUEST_TARGET');
    expect(refusal('example.com:443')).toBe('BAD_REQUEST_TARGET');
    expect(refusal('collaborate/x')).toBe('BAD_REQUEST_TARGET');
    expect(refusal('ftp://127.0.0.1:8080/collaborate/x')).toBe('BAD_REQUEST_TARGET');
  });
});

describe('hostNamingListener: absolute-form is only "this proxy" when Host names the listener itself', () => {
  it('accepts the listener address and port, and localhost on loopback', () => {
    expect(hostNamingListener('127.0.0.1:8080', '127.0.0.1', 8080)).toBe('127.0.0.1:8080');
    expect(hostNamingListener('LOCALHOST:8080', '127.0.0.1', 8080)).toBe('LOCALHOST:8080');
    expect(hostNamingListener('[::1]:8080', '::1', 8080)).toBe('[::1]:8080');
    expect(hostNamingListener('localhost:8080', '::1', 8080)).toBe('localhost:8080');
    expect(hostNamingListener('127.0.0.1:8080', '::ffff:127.0.0.1', 8080)).toBe('127.0.0.1:8080');
    expect(hostNamingListener('10.1.2.3', '10.1.2.3', 80)).toBe('10.1.2.3');
  });

  it('refuses any other host, another port, localhost off loopback, and a missing or malformed Host', () => {
    expect(hostNamingListener('example.com:8080', '127.0.0.1', 8080)).toBeUndefined();
    expect(hostNamingListener('127.0.0.1:8081', '127.0.0.1', 8080)).toBeUndefined();
    expect(hostNamingListener('127.0.0.1', '127.0.0.1', 8080)).toBeUndefined();
    expect(hostNamingListener('localhost:8080', '10.1.2.3', 8080)).toBeUndefined();
    expect(hostNamingListener('127.0.0.2:8080', '127.0.0.1', 8080)).toBeUndefined();
    expect(hostNamingListener(undefined, '127.0.0.1', 8080)).toBeUndefined();
    expect(hostNamingListener('127.0.0.1:8080', undefined, 8080)).toBeUndefined();
    expect(hostNamingListener('127.0.0.1:8080', '127.0.0.1', undefined)).toBeUndefined();
    expect(hostNamingListener('a:b:c', '127.0.0.1', 8080)).toBeUndefined();
  });

  it('together with the resolver: a client cannot make another host "this proxy" by sending it in Host too', () => {
    const host = hostNamingListener('evil.example', '127.0.0.1', 8080);
    expect(refusal('http://evil.example/collaborate/x', host ?? null)).toBe('BAD_REQUEST_TARGET');
    const own = hostNamingListener('127.0.0.1:8080', '127.0.0.1', 8080);
    expect(resolve('http://127.0.0.1:8080/collaborate/x', own).upstreamPath).toBe('/acme/api/x');
  });
});
