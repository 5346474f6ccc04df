/**
 * The egress settings as the loader builds them: which proxy each peer uses and why, TLS file paths,
 * the `…File` secrets, and the refusals that name their setting. The connections themselves are tested
 * against real TLS servers and a real forward proxy in test/integration/egress-*.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { describeConfig } from '../../src/cli/check.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { Config, ProxyRoute } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { describeTlsFailure } from '../../src/net/egress-failure.js';
import { tlsFileProblems } from '../../src/net/describe-egress.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-egress-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One apiax upstream with `extra` lines added under the upstream and `authExtra` under its auth. */
function yaml(extra = '', authExtra = ''): string {
  const indent = (text: string, spaces: number) =>
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => ' '.repeat(spaces) + line)
      .join('\n');
  return `
upstreams:
  apiax:
    target: https://api.apiax.example
${indent(extra, 4)}
    auth:
      preset: apiax
      tokenUrl: https://auth.apiax.example/token
      refreshToken: seed
${indent(authExtra, 6)}
`;
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

const only = (config: Config) => config.upstreams[0]!;
const proxyOf = (route: ProxyRoute) => (route.kind === 'proxy' ? { origin: route.origin, source: route.source } : route);

describe('egress proxy from the environment', () => {
  it('sends both peers through HTTPS_PROXY, with its credentials taken as Basic and never in the origin', () => {
    const config = parseConfig(yaml(), { env: { HTTPS_PROXY: 'http://svc%40corp:p%3Ass@proxy.corp:3128' } });
    const { egress, auth } = only(config);
    expect(proxyOf(egress.proxy)).toEqual({ origin: 'http://proxy.corp:3128', source: 'HTTPS_PROXY' });
    expect(proxyOf(auth.egress.proxy)).toEqual({ origin: 'http://proxy.corp:3128', source: 'HTTPS_PROXY' });
    const authorization = egress.proxy.kind === 'proxy' ? egress.proxy.authorization?.reveal() : undefined;
    expect(authorization).toBe(`Basic ${Buffer.from('svc@corp:p:ss').toString('base64')}`);
  });

  it('goes direct for a NO_PROXY match and says which entry matched', () => {
    const config = parseConfig(yaml(), { env: { HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: 'localhost, .apiax.example' } });
    expect(only(config).egress.proxy).toEqual({ kind: 'direct', reason: 'NO_PROXY entry ".apiax.example" matches' });
  });

  it('refuses an unsupported proxy scheme at load, naming the variable, without its value', () => {
    const problems = problemsOf(() => parseConfig(yaml(), { env: { HTTPS_PROXY: 'socks5://user:hunter2@proxy:1080' } }));
    expect(problems.join('\n')).toContain('HTTPS_PROXY');
    expect(problems.join('\n')).toContain('upstreams.apiax.proxy');
    expect(problems.join('\n')).not.toContain('hunter2');
  });
});

describe('proxy in proxy.yaml', () => {
  it('direct wins over the environment', () => {
    const config = parseConfig(yaml('proxy: direct'), { env: { HTTPS_PROXY: 'http://proxy.corp:3128' } });
    expect(only(config).egress.proxy).toEqual({ kind: 'direct', reason: 'upstreams.apiax.proxy: direct' });
    // The token endpoint follows the upstream unless auth.proxy says otherwise.
    expect(only(config).auth.egress.proxy.kind).toBe('direct');
  });

  it('auth.proxy replaces the upstream proxy for the token endpoint only', () => {
    const config = parseConfig(yaml('proxy: http://proxy-a:3128', 'proxy: http://proxy-b:3128'), { env: {} });
    expect(proxyOf(only(config).egress.proxy)).toEqual({ origin: 'http://proxy-a:3128', source: 'upstreams.apiax.proxy' });
    expect(proxyOf(only(config).auth.egress.proxy)).toEqual({ origin: 'http://proxy-b:3128', source: 'upstreams.apiax.auth.proxy' });
  });

  it('reads the proxy password from passwordFile', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'proxy-password'), 'pa:ss\n');
    writeFileSync(join(dir, 'proxy.yaml'), yaml('proxy:\n  url: http://proxy.corp:3128\n  username: svc\n  passwordFile: proxy-password'));
    const route = only(loadConfigFile(join(dir, 'proxy.yaml'), { env: {} })).egress.proxy;
    expect(route.kind === 'proxy' && route.authorization?.reveal()).toBe(`Basic ${Buffer.from('svc:pa:ss').toString('base64')}`);
  });

  it('refuses credentials in the proxy URL and a password without a username', () => {
    expect(problemsOf(() => parseConfig(yaml('proxy: http://svc:hunter2@proxy.corp:3128'), { env: {} }))).toEqual([
      'upstreams.apiax.proxy: credentials in the proxy URL are not allowed; use upstreams.apiax.proxy.username and upstreams.apiax.proxy.passwordFile',
    ]);
    expect(problemsOf(() => parseConfig(yaml('proxy: { url: "http://proxy.corp:3128", password: x }'), { env: {} }))).toEqual([
      'upstreams.apiax.proxy.password: needs upstreams.apiax.proxy.username',
    ]);
  });
});

describe('tls in proxy.yaml', () => {
  it('resolves file paths against the config file and reads passphraseFile', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'passphrase'), 'open sesame\n');
    writeFileSync(
      join(dir, 'proxy.yaml'),
      yaml(
        'tls:\n  caFile: certs/ca.pem\n  certFile: certs/c.pem\n  keyFile: certs/k.pem\n  passphraseFile: passphrase\n  servername: api.internal',
      ),
    );
    const tls = only(loadConfigFile(join(dir, 'proxy.yaml'), { env: {} })).egress.tls!;
    expect(tls).toMatchObject({
      setting: 'upstreams.apiax.tls',
      caFile: join(dir, 'certs/ca.pem'),
      certFile: join(dir, 'certs/c.pem'),
      keyFile: join(dir, 'certs/k.pem'),
      servername: 'api.internal',
      minVersion: 'TLSv1.2',
      reloadIntervalMs: 60_000,
    });
    expect(tls.passphrase?.reveal()).toBe('open sesame');
  });

  it('applies the upstream tls to the token endpoint unless auth.tls is set', () => {
    const shared = only(parseConfig(yaml('tls: { caFile: /a.pem }'), { env: {} }));
    expect(shared.auth.egress.tls).toMatchObject({ setting: 'upstreams.apiax.tls', caFile: '/a.pem' });
    const apart = only(parseConfig(yaml('tls: { caFile: /a.pem }', 'tls: { caFile: /b.pem }'), { env: {} }));
    expect(apart.egress.tls?.caFile).toBe('/a.pem');
    expect(apart.auth.egress.tls).toMatchObject({ setting: 'upstreams.apiax.auth.tls', caFile: '/b.pem' });
  });

  it('refuses a certificate without its key, a passphrase without a key, and a TLS floor below 1.2', () => {
    const problems = problemsOf(() => parseConfig(yaml('tls: { certFile: /c.pem, passphrase: x }'), { env: {} }));
    expect(problems.join('\n')).toMatch(/upstreams\.apiax\.tls\.keyFile: certFile and keyFile go together/);
    expect(problems.join('\n')).toMatch(/upstreams\.apiax\.tls\.passphrase: a passphrase needs a keyFile/);
    expect(problemsOf(() => parseConfig(yaml('tls: { minVersion: TLSv1.1 }'), { env: {} })).join('\n')).toMatch(
      /upstreams\.apiax\.tls\.minVersion: .*"TLSv1\.2"\|"TLSv1\.3"/,
    );
  });

  it('check reads the files: a missing one is named with its setting, once for a section both peers share', () => {
    const config = parseConfig(yaml('tls: { caFile: /nonexistent/ca.pem }'), { env: {} });
    expect(tlsFileProblems(config)).toEqual(['upstreams.apiax.tls.caFile: cannot read /nonexistent/ca.pem (ENOENT)']);
  });
});

describe('check', () => {
  it('prints each peer’s egress path without credentials', () => {
    const config = parseConfig(yaml('tls: { caFile: /etc/corp/ca.pem, servername: api.internal }', 'proxy: direct'), {
      env: { HTTPS_PROXY: 'http://svc:hunter2@proxy.corp:3128' },
    });
    const text = describeConfig(config);
    expect(text).toContain(
      'egress       target: via proxy http://proxy.corp:3128 (HTTPS_PROXY, with credentials); TLS 1.2+, CA /etc/corp/ca.pem, servername api.internal',
    );
    expect(text).toContain(
      'token endpoint: direct (upstreams.apiax.auth.proxy: direct); TLS 1.2+, CA /etc/corp/ca.pem, servername api.internal',
    );
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('svc');
  });
});

describe('TLS failures are named with the setting that fixes them', () => {
  const egress = only(parseConfig(yaml('tls: { caFile: /a.pem }'), { env: {} })).egress;
  const bare = only(parseConfig(yaml(), { env: {} })).egress;
  const error = (code: string) => Object.assign(new Error('x'), { code });

  it.each([
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /not trusted .*set upstreams\.apiax\.tls\.caFile/],
    ['SELF_SIGNED_CERT_IN_CHAIN', /not trusted/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /does not name the host .*upstreams\.apiax\.tls\.servername/],
    ['CERT_HAS_EXPIRED', /not valid now/],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', /may require a client certificate: set upstreams\.apiax\.tls\.certFile/],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', /TLS handshake failed/],
  ])('%s', (code, message) => {
    expect(describeTlsFailure(error(code), egress, 'upstream apiax')).toMatch(message);
    expect(describeTlsFailure(error(code), egress, 'upstream apiax')).toMatch(/^upstream apiax: /);
  });

  it('finds the code on a wrapped cause, names upstream.tls when none is set, and leaves other errors alone', () => {
    const wrapped = Object.assign(new Error('socket'), { code: 'UND_ERR_SOCKET', cause: error('DEPTH_ZERO_SELF_SIGNED_CERT') });
    expect(describeTlsFailure(wrapped, bare, 'upstream apiax')).toMatch(/set upstreams\.apiax\.tls\.caFile/);
    expect(describeTlsFailure(error('ECONNREFUSED'), egress, 'upstream apiax')).toBeUndefined();
  });
});
