import { describe, expect, it } from 'vitest';
import { envProxyFor, type EnvProxyDecision } from '../../src/net/env-proxy.js';

const PROXY = 'http://proxy.corp:3128';

/** The decision reduced to what the tables compare: 'direct', or the variable and the proxy URL. */
function decide(target: string, env: NodeJS.ProcessEnv): string {
  const decision: EnvProxyDecision = envProxyFor(new URL(target), env);
  return decision.kind === 'direct' ? 'direct' : `${decision.variable} ${decision.url.href}`;
}

describe('which variable names the proxy', () => {
  const cases: [string, string, NodeJS.ProcessEnv, string][] = [
    ['https target, HTTPS_PROXY', 'https://api.example.com/', { HTTPS_PROXY: PROXY }, `HTTPS_PROXY ${PROXY}/`],
    ['https target, https_proxy', 'https://api.example.com/', { https_proxy: PROXY }, `https_proxy ${PROXY}/`],
    [
      'lowercase wins over uppercase',
      'https://api.example.com/',
      { https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:2' },
      'https_proxy http://low:1/',
    ],
    ['empty lowercase counts as unset', 'https://api.example.com/', { https_proxy: '', HTTPS_PROXY: PROXY }, `HTTPS_PROXY ${PROXY}/`],
    ['blank lowercase counts as unset', 'https://api.example.com/', { https_proxy: '  ', HTTPS_PROXY: PROXY }, `HTTPS_PROXY ${PROXY}/`],
    ['both empty', 'https://api.example.com/', { https_proxy: '', HTTPS_PROXY: '' }, 'direct'],
    ['nothing set', 'https://api.example.com/', {}, 'direct'],
    ['https target never uses HTTP_PROXY', 'https://api.example.com/', { HTTP_PROXY: PROXY, http_proxy: PROXY }, 'direct'],
    ['http target, http_proxy', 'http://api.example.com/', { http_proxy: PROXY }, `http_proxy ${PROXY}/`],
    ['http target accepts HTTP_PROXY (not CGI)', 'http://api.example.com/', { HTTP_PROXY: PROXY }, `HTTP_PROXY ${PROXY}/`],
    [
      'http_proxy wins over HTTP_PROXY',
      'http://api.example.com/',
      { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:2' },
      'http_proxy http://low:1/',
    ],
    ['http target never uses HTTPS_PROXY', 'http://api.example.com/', { HTTPS_PROXY: PROXY }, 'direct'],
    ['ALL_PROXY is ignored', 'https://api.example.com/', { ALL_PROXY: PROXY, all_proxy: PROXY }, 'direct'],
    ['other target schemes are never proxied', 'ws://api.example.com/', { HTTP_PROXY: PROXY, HTTPS_PROXY: PROXY }, 'direct'],
  ];
  it.each(cases)('%s', (_name, target, env, expected) => {
    expect(decide(target, env)).toBe(expected);
  });
});

describe('the proxy value', () => {
  const cases: [string, string, string][] = [
    ['without a scheme means http://', 'proxy.corp:3128', 'http://proxy.corp:3128/'],
    ['without a scheme or port', 'proxy.corp', 'http://proxy.corp/'],
    ['an IPv4 address without a scheme', '10.0.0.5:8080', 'http://10.0.0.5:8080/'],
    ['a bracketed IPv6 address without a scheme', '[fd00::5]:8080', 'http://[fd00::5]:8080/'],
    ['https:// proxies are kept', 'https://proxy.corp:8443', 'https://proxy.corp:8443/'],
    ['the scheme is case-insensitive', 'HTTP://Proxy.Corp:3128', 'http://proxy.corp:3128/'],
    ['surrounding blanks are dropped', '  http://proxy.corp:3128 \n', 'http://proxy.corp:3128/'],
    ['credentials are kept for the caller', 'http://user:p%40ss@proxy.corp:3128', 'http://user:p%40ss@proxy.corp:3128/'],
    ['credentials without a scheme', 'user:secret@proxy.corp:3128', 'http://user:secret@proxy.corp:3128/'],
  ];
  it.each(cases)('%s', (_name, value, expected) => {
    expect(decide('https://api.example.com/', { HTTPS_PROXY: value })).toBe(`HTTPS_PROXY ${expected}`);
  });

  it('returns the URL object with its password for the caller to use', () => {
    const decision = envProxyFor(new URL('https://api.example.com/'), { HTTPS_PROXY: 'http://alice:s3cret@proxy.corp:3128' });
    expect(decision.kind).toBe('proxy');
    if (decision.kind !== 'proxy') return;
    expect(decision.url.username).toBe('alice');
    expect(decision.url.password).toBe('s3cret');
    expect(decision.url.port).toBe('3128');
  });

  const unsupported: [string, string, string][] = [
    ['socks5', 'HTTPS_PROXY', 'socks5://user:hunter2@proxy.corp:1080'],
    ['socks5h', 'https_proxy', 'socks5h://proxy.corp:1080'],
    ['socks4', 'HTTPS_PROXY', 'SOCKS4://proxy.corp:1080'],
  ];
  it.each(unsupported)('a %s:// proxy throws, naming the variable and the scheme', (scheme, variable, value) => {
    expect(() => envProxyFor(new URL('https://api.example.com/'), { [variable]: value })).toThrow(
      new RegExp(`^${variable}: proxy scheme "${scheme}://" is not supported`),
    );
  });

  it('an unparsable value throws, naming the variable but not the value', () => {
    const value = 'http://user:hunter2@proxy.corp:99999';
    const attempt = () => envProxyFor(new URL('http://api.example.com/'), { http_proxy: value });
    expect(attempt).toThrow(/^http_proxy is not a valid proxy URL/);
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('an unusable proxy value throws even when NO_PROXY excludes the target', () => {
    expect(() => envProxyFor(new URL('https://api.example.com/'), { HTTPS_PROXY: 'socks5://proxy:1080', NO_PROXY: '*' })).toThrow(
      /HTTPS_PROXY/,
    );
  });

  it('an unusable value in a variable that does not apply is not read', () => {
    expect(decide('https://api.example.com/', { HTTP_PROXY: 'socks5://proxy:1080', HTTPS_PROXY: PROXY })).toBe(`HTTPS_PROXY ${PROXY}/`);
  });
});

describe('NO_PROXY', () => {
  // [NO_PROXY value, target, proxied?]
  const cases: [string, string, boolean][] = [
    // the wildcard
    ['*', 'https://api.example.com/', false],
    [' * ', 'https://api.example.com/', false],
    ['*,localhost', 'https://api.example.com/', true], // as in curl and undici: `*` only as the whole value
    // hostnames: the host and its subdomains
    ['example.com', 'https://example.com/', false],
    ['example.com', 'https://api.example.com/', false],
    ['example.com', 'https://a.b.example.com/', false],
    ['example.com', 'https://notexample.com/', true],
    ['example.com', 'https://example.com.evil.net/', true],
    ['example.com', 'https://example.org/', true],
    ['.example.com', 'https://api.example.com/', false],
    ['.example.com', 'https://example.com/', false],
    ['.example.com', 'https://notexample.com/', true],
    ['*.example.com', 'https://api.example.com/', false],
    ['*.example.com', 'https://example.com/', false],
    ['*.example.com', 'https://notexample.com/', true],
    ['api.example.com', 'https://example.com/', true],
    ['EXAMPLE.COM', 'https://Api.Example.Com/', false],
    ['example.com.', 'https://api.example.com/', false],
    ['example.com', 'https://api.example.com./', false],
    ['localhost', 'http://localhost:8080/', false],
    ['localhost', 'http://127.0.0.1:8080/', true], // names are never resolved
    // lists: commas, whitespace, both, and empty entries
    ['foo.test,example.com', 'https://api.example.com/', false],
    ['foo.test example.com', 'https://api.example.com/', false],
    ['foo.test, \t example.com', 'https://api.example.com/', false],
    ['foo.test,,\nexample.com,', 'https://api.example.com/', false],
    ['foo.test,bar.test', 'https://api.example.com/', true],
    [',', 'https://api.example.com/', true],
    // ports: the entry applies to that port only; default ports by scheme
    ['example.com:8443', 'https://api.example.com:8443/', false],
    ['example.com:8443', 'https://api.example.com/', true],
    ['example.com:443', 'https://api.example.com/', false],
    ['example.com:443', 'http://api.example.com/', true],
    ['example.com:80', 'http://api.example.com/', false],
    ['example.com:80', 'http://api.example.com:8080/', true],
    // IPv4 literals: compared as addresses, never as suffixes
    ['10.1.2.3', 'http://10.1.2.3/', false],
    ['10.1.2.3', 'http://10.1.2.4/', true],
    ['1.2.3', 'http://10.1.2.3/', true],
    ['2.3', 'http://10.1.2.3/', true],
    ['10.1.2.3:8080', 'http://10.1.2.3:8080/', false],
    ['10.1.2.3:8080', 'http://10.1.2.3/', true],
    ['127.0.0.1', 'http://127.1/', false], // the URL normalises the target
    // IPv6 literals: bare and bracketed, in any spelling
    ['::1', 'http://[::1]:8080/', false],
    ['[::1]', 'http://[::1]:8080/', false],
    ['[::1]:8080', 'http://[::1]:8080/', false],
    ['[::1]:8080', 'http://[::1]:9090/', true],
    ['0:0:0:0:0:0:0:1', 'http://[::1]/', false],
    ['::1', 'http://[::2]/', true],
    ['FD00::1', 'https://[fd00::1]/', false],
    // CIDR ranges
    ['10.0.0.0/8', 'http://10.200.3.4/', false],
    ['10.0.0.0/8', 'http://11.0.0.1/', true],
    ['192.168.1.0/24', 'https://192.168.1.77/', false],
    ['192.168.1.0/24', 'https://192.168.2.1/', true],
    ['0.0.0.0/0', 'https://203.0.113.9/', false],
    ['10.0.0.0/8', 'http://ten.example.com/', true], // names are never resolved
    ['fd00::/8', 'https://[fd12:3456::1]/', false],
    ['fd00::/8', 'https://[fe80::1]/', true],
    ['[fd00::]/8', 'https://[fd12:3456::1]/', false],
    ['::/0', 'https://[2001:db8::1]/', false],
    ['::/0', 'https://192.0.2.1/', true], // an IPv6 range holds no IPv4 target
    ['10.0.0.0/8', 'http://[::ffff:10.0.0.1]/', true], // nor does an IPv4 range hold an IPv4-mapped IPv6 target
    // entries that are not understood are ignored, the others still apply
    ['10.0.0.0/33', 'http://10.0.0.1/', true],
    ['10.0.0.0/x', 'http://10.0.0.1/', true],
    ['fd00::/129', 'https://[fd00::1]/', true],
    ['example.com/8', 'https://example.com/', true],
    ['10.0.0.0/33,example.com', 'https://example.com/', false],
    ['.', 'https://example.com/', true],
    ['*.', 'https://example.com/', true],
    ['ex*ample.com', 'https://example.com/', true],
  ];
  it.each(cases)('NO_PROXY=%j, target %s → proxied: %s', (noProxy, target, proxied) => {
    const env = { NO_PROXY: noProxy, HTTP_PROXY: PROXY, HTTPS_PROXY: PROXY };
    expect(decide(target, env) !== 'direct').toBe(proxied);
  });

  it('no_proxy wins over NO_PROXY, and an empty no_proxy counts as unset', () => {
    const env = { HTTPS_PROXY: PROXY };
    expect(decide('https://a.test/', { ...env, no_proxy: 'b.test', NO_PROXY: 'a.test' })).not.toBe('direct');
    expect(decide('https://a.test/', { ...env, no_proxy: 'a.test', NO_PROXY: 'b.test' })).toBe('direct');
    expect(decide('https://a.test/', { ...env, no_proxy: '', NO_PROXY: 'a.test' })).toBe('direct');
  });
});

describe('reasons', () => {
  const cases: [string, string, NodeJS.ProcessEnv, string][] = [
    ['nothing set for https', 'https://a.test/', {}, 'no https_proxy or HTTPS_PROXY set'],
    ['nothing set for http', 'http://a.test/', {}, 'no http_proxy or HTTP_PROXY set'],
    [
      'only an http proxy, for an https target',
      'https://a.test/',
      { HTTP_PROXY: PROXY },
      'no https_proxy or HTTPS_PROXY set (HTTP_PROXY applies to http: targets only, as in curl)',
    ],
    ['the wildcard', 'https://a.test/', { HTTPS_PROXY: PROXY, no_proxy: '*' }, 'no_proxy is "*"'],
    [
      'the matching entry as written',
      'https://api.corp.example/',
      { HTTPS_PROXY: PROXY, NO_PROXY: 'x.test, .Corp.Example' },
      'NO_PROXY entry ".Corp.Example" matches',
    ],
    ['a CIDR entry', 'https://10.1.1.1/', { HTTPS_PROXY: PROXY, NO_PROXY: '10.0.0.0/8' }, 'NO_PROXY entry "10.0.0.0/8" matches'],
    ['another scheme', 'ftp://a.test/', { HTTPS_PROXY: PROXY }, 'ftp: targets are never proxied'],
  ];
  it.each(cases)('%s', (_name, target, env, reason) => {
    expect(envProxyFor(new URL(target), env)).toEqual({ kind: 'direct', reason });
  });

  it('never contain the proxy password', () => {
    const env = { HTTPS_PROXY: 'http://alice:hunter2@proxy.corp:3128', HTTP_PROXY: 'http://bob:hunter2@proxy.corp:3128' };
    const reasons = [
      envProxyFor(new URL('https://a.test/'), { ...env, NO_PROXY: 'a.test' }),
      envProxyFor(new URL('https://a.test/'), { ...env, NO_PROXY: '*' }),
      envProxyFor(new URL('https://a.test/'), { HTTP_PROXY: env.HTTP_PROXY }),
    ].map((decision) => (decision.kind === 'direct' ? decision.reason : 'proxied'));
    expect(reasons).not.toContain('proxied');
    for (const reason of reasons) expect(reason).not.toMatch(/hunter2|alice|bob/);
  });
});
