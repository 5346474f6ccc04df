import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { Config, UpstreamConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';

/** A temp directory removed when the running test finishes. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-config-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The ConfigError that `fn` throws; fails the test when it throws nothing or something else. */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

function upstream(config: Config, name: string): UpstreamConfig {
  const found = config.upstreams.find((item) => item.name === name);
  if (!found) throw new Error(`no upstream ${name}`);
  return found;
}

const collaborate = `
upstreams:
  collaborate:
    target: https://acme.highq.com/acme/api/
    auth:
      preset: collaborate
      tokenUrl: https://acme.highq.com/acme/api/oauth2/token
      clientId: the-client
      clientSecret: the-secret
      refreshToken: the-seed
`;

describe('parseConfig: defaults', () => {
  it('fills in every default and derives the route from the upstream name', () => {
    const config = parseConfig(collaborate, { env: {} });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9901 });
    expect(config.log).toEqual({ level: 'info', accessLog: true });
    expect(config.store).toEqual({ type: 'file', path: resolve(process.cwd(), 'data/tokens.json') });
    expect(config.drainTimeoutMs).toBe(10_000);
    expect(config.source).toBe('<inline>');
    const up = upstream(config, 'collaborate');
    expect(up.routePath).toBe('/collaborate');
    expect(up.targetOrigin).toBe('https://acme.highq.com');
    expect(up.targetBasePath).toBe('/acme/api');
    expect(up.stripHeaders).toEqual([]);
    expect(up.maxReplayBodyBytes).toBe(1024 * 1024);
    expect(up.connectTimeoutMs).toBe(5_000);
    expect(up.headersTimeoutMs).toBe(60_000);
    expect(up.bodyIdleTimeoutMs).toBe(60_000);
    expect(up.maxConnections).toBe(128);
    expect(up.auth.earlyRefreshFraction).toBe(0.8);
    expect(up.auth.earlyRefreshSeconds).toBe(60);
    expect(up.auth.tokenRequestTimeoutMs).toBe(10_000);
    expect(up.auth.tokenWaitTimeoutMs).toBe(5_000);
    expect(up.auth.lockLeaseMs).toBe(6_000);
    expect(up.auth.inFlightMarkTtlMs).toBe(120_000);
    expect(up.cookies).toBe('scope');
    expect(up.auth.missing).toEqual([]);
  });

  it('takes explicit top-level settings, IPv6 listen addresses, admin off and the memory store', () => {
    const config = parseConfig(
      `listen: "[::1]:0"\nadmin: "off"\nlog: { level: warn, accessLog: false }\nstore: { type: memory }\ndrainTimeoutMs: 250\n${collaborate}`,
      { env: {} },
    );
    expect(config.listen).toEqual({ host: '::1', port: 0 });
    expect(config.admin).toBeNull();
    expect(config.log).toEqual({ level: 'warn', accessLog: false });
    expect(config.store).toEqual({ type: 'memory' });
    expect(config.drainTimeoutMs).toBe(250);
  });

  it('resolves a relative store path against the config file directory', () => {
    const dir = tempDir();
    const file = join(dir, 'proxy.yaml');
    writeFileSync(file, `store: { type: file, path: ./state/tokens.json }\n${collaborate}`);
    const config = loadConfigFile(file, { env: {} });
    expect(config.store).toEqual({ type: 'file', path: join(dir, 'state', 'tokens.json') });
    expect(config.source).toBe(file);
  });

  it('routes at an explicit path and keeps a root target base path empty', () => {
    const config = parseConfig(
      `upstreams:\n  a:\n    target: http://127.0.0.1:9\n    path: /legacy/a/\n    auth: { preset: oauth2, tokenUrl: http://127.0.0.1:9/token }\n`,
      { env: {} },
    );
    const up = upstream(config, 'a');
    expect(up.routePath).toBe('/legacy/a');
    expect(up.targetOrigin).toBe('http://127.0.0.1:9');
    expect(up.targetBasePath).toBe('');
  });
});

describe('parseConfig: ${ENV} interpolation', () => {
  // A replacer function, so that `$$` in the value is not String.replace's own escape for `$`.
  const template = (clientId: string) => collaborate.replace('clientId: the-client', () => `clientId: "${clientId}"`);

  it('substitutes ${VAR} from the environment', () => {
    const config = parseConfig(template('${CID}'), { env: { CID: 'from-env' } });
    expect(upstream(config, 'collaborate').auth.clientId).toBe('from-env');
  });

  it('uses the default of ${VAR:-default} when VAR is unset or empty, and the value when it is set', () => {
    expect(upstream(parseConfig(template('${CID:-fallback}'), { env: {} }), 'collaborate').auth.clientId).toBe('fallback');
    expect(upstream(parseConfig(template('${CID:-fallback}'), { env: { CID: '' } }), 'collaborate').auth.clientId).toBe('fallback');
    expect(upstream(parseConfig(template('${CID:-fallback}'), { env: { CID: 'real' } }), 'collaborate').auth.clientId).toBe('real');
  });

  it('interpolates inside longer strings and several references in one value', () => {
    const config = parseConfig(template('pre-${A}-mid-${B:-b}-post'), { env: { A: 'a' } });
    expect(upstream(config, 'collaborate').auth.clientId).toBe('pre-a-mid-b-post');
  });

  it('writes a literal ${ for $${ and does not interpolate what follows', () => {
    const config = parseConfig(template('$${CID}'), { env: { CID: 'must-not-appear' } });
    expect(upstream(config, 'collaborate').auth.clientId).toBe('${CID}');
  });

  it('never interprets a variable value as YAML or as another reference', () => {
    const config = parseConfig(template('${CID}'), { env: { CID: 'x\nlisten: 0.0.0.0:1 ${OTHER}', OTHER: 'no' } });
    expect(upstream(config, 'collaborate').auth.clientId).toBe('x\nlisten: 0.0.0.0:1 ${OTHER}');
    expect(config.listen.host).toBe('127.0.0.1');
  });

  it('reports a missing variable as a problem with its path, and how to make it optional', () => {
    const error = configErrorOf(() => parseConfig(template('${COLLABORATE_CLIENT_ID}'), { env: {} }));
    expect(error.problems).toEqual([
      'upstreams.collaborate.auth.clientId: environment variable COLLABORATE_CLIENT_ID is not set (write ${COLLABORATE_CLIENT_ID:-} to make it optional)',
    ]);
    expect(error.message).toContain('upstreams.collaborate.auth.clientId: environment variable COLLABORATE_CLIENT_ID is not set');
  });

  it('interpolates numbers-as-strings only where strings are expected (a port from the environment is still validated)', () => {
    const error = configErrorOf(() => parseConfig(`listen: "127.0.0.1:\${PORT}"\n${collaborate}`, { env: { PORT: '99999' } }));
    expect(error.problems).toEqual(['listen: port must be 0-65535']);
  });
});

describe('parseConfig: every problem in one ConfigError', () => {
  it('lists unknown keys, wrong types, bad and non-http URLs, a bad listen address and a missing variable together', () => {
    const yaml = `
listen: localhost
lgo: { level: info }
upstreams:
  collaborate:
    target: not a url
    maxReplayBodyBytes: lots
    auth:
      preset: collaborate
      tokenUrl: ftp://acme.highq.com/token
      clientId: \${NOT_SET_ANYWHERE}
      clientSecret: s
      colour: blue
`;
    const error = configErrorOf(() => parseConfig(yaml, { env: {} }));
    const problems = error.problems.join('\n');
    expect(problems).toContain('upstreams.collaborate.auth.clientId: environment variable NOT_SET_ANYWHERE is not set');
    expect(problems).toMatch(/^listen: expected host:port/m);
    expect(problems).toMatch(/^\(top level\): unknown key lgo \(did you mean log\?\)$/m);
    expect(problems).toMatch(/^upstreams\.collaborate\.target: expected an http:\/\/ or https:\/\/ URL$/m);
    expect(problems).toMatch(/^upstreams\.collaborate\.maxReplayBodyBytes: .*expected number/m);
    expect(problems).toMatch(/^upstreams\.collaborate\.auth\.tokenUrl: expected an http:\/\/ or https:\/\/ URL$/m);
    expect(problems).toMatch(/^upstreams\.collaborate\.auth: unknown key colour$/m);
    expect(error.problems).toHaveLength(7);
    // One message, one line per problem, no stack-ish noise.
    for (const problem of error.problems) expect(error.message).toContain(`  - ${problem}`);
  });

  it('lists target and route problems of several upstreams together', () => {
    const yaml = `
upstreams:
  creds:
    target: https://user:pass@example.com/api
    path: /common
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
  query:
    target: https://example.com/api?x=1
    path: /common/
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
  fragment:
    target: https://example.com/api#top
    path: /x/../y
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
  root:
    target: https://example.com/
    path: /
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
`;
    const error = configErrorOf(() => parseConfig(yaml, { env: {} }));
    expect(error.problems).toEqual(
      expect.arrayContaining([
        'upstreams.creds.target: credentials in the URL are not allowed; use auth',
        'upstreams.query.target: must not have a query or fragment',
        'upstreams.query.path: /common is already routed to creds',
        'upstreams.fragment.target: must not have a query or fragment',
        'upstreams.fragment.path: must not contain . or .. segments',
        'upstreams.root.path: must not be the root; every upstream needs its own prefix',
      ]),
    );
    expect(error.problems).toHaveLength(6);
    // The credentials in the target URL are not echoed back.
    expect(error.message).not.toContain('pass@');
  });

  it('reports schema problems and route/target problems together, not one batch after the other', () => {
    const yaml = `
upstreams:
  one:
    target: https://user:pass@example.com/api
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
  two:
    target: https://example.com/api
    maxConnections: -1
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
`;
    const error = configErrorOf(() => parseConfig(yaml, { env: {} }));
    expect(error.problems.join('\n')).toMatch(/^upstreams\.two\.maxConnections: /m);
    expect(error.problems).toContain('upstreams.one.target: credentials in the URL are not allowed; use auth');
  });

  it('rejects bad listen and admin addresses', () => {
    for (const bad of ['8080', '127.0.0.1', '127.0.0.1:', '127.0.0.1:70000', 'http://127.0.0.1:8080', ' 127.0.0.1:80']) {
      const error = configErrorOf(() => parseConfig(`listen: "${bad}"\n${collaborate}`, { env: {} }));
      expect(error.problems, bad).toHaveLength(1);
      expect(error.problems[0], bad).toMatch(/^listen: /);
    }
    const error = configErrorOf(() => parseConfig(`admin: "127.0.0.1:99999"\n${collaborate}`, { env: {} }));
    expect(error.problems).toEqual(['admin: port must be 0-65535']);
  });

  it('rejects an unknown preset, a missing upstream list, and bad upstream names', () => {
    expect(configErrorOf(() => parseConfig('listen: 127.0.0.1:1\n', { env: {} })).problems.join('\n')).toMatch(/^upstreams: /m);
    expect(configErrorOf(() => parseConfig('upstreams: {}\n', { env: {} })).problems).toEqual([
      'upstreams: at least one upstream is required',
    ]);
    const error = configErrorOf(() =>
      parseConfig('upstreams:\n  Bad.Name:\n    target: https://e.com\n    auth: { preset: keycloak, tokenUrl: https://e.com/t }\n', {
        env: {},
      }),
    );
    expect(error.problems).toEqual(['upstreams.Bad.Name: upstream names are lowercase letters, digits, - and _']);
    const preset = configErrorOf(() =>
      parseConfig('upstreams:\n  good:\n    target: https://e.com\n    auth: { preset: keycloak, tokenUrl: https://e.com/t }\n', {
        env: {},
      }),
    );
    expect(preset.problems).toHaveLength(1);
    expect(preset.problems[0]).toMatch(/^upstreams\.good\.auth\.preset: .*collaborate/);
  });

  it('reports YAML syntax errors and duplicate keys with the source name, line and column, and nothing dangling', () => {
    const unclosed = configErrorOf(() => parseConfig('listen: [unclosed\n', { env: {} })).problems[0];
    expect(unclosed).toMatch(/^<inline>:\d+:\d+: \S/);
    expect(unclosed).not.toMatch(/column \d+:$/);
    expect(configErrorOf(() => parseConfig(`listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n${collaborate}`, { env: {} })).problems[0]).toMatch(
      /^<inline>:2:1: .*(duplicate|unique)/i,
    );
  });

  it('says "required" for a missing key, and offers the closest known key for a typo', () => {
    const missingUrl = configErrorOf(() =>
      parseConfig('upstreams:\n  a:\n    target: http://127.0.0.1:1\n    auth: { preset: apiax }\n', { env: {} }),
    );
    expect(missingUrl.problems).toEqual(['upstreams.a.auth.tokenUrl: required']);
    const typos = configErrorOf(() =>
      parseConfig(
        'listn: 127.0.0.1:8080\nupstreams:\n  a:\n    target: http://127.0.0.1:1\n    maxConection: 3\n    auth: { preset: apiax, tokenUrl: http://127.0.0.1:1/t, refreshTokn: x }\nstore: { type: redis, url: "redis://x", comandTimeoutMs: 5 }\n',
        { env: {} },
      ),
    );
    expect(typos.problems).toEqual(
      expect.arrayContaining([
        '(top level): unknown key listn (did you mean listen?)',
        'upstreams.a: unknown key maxConection (did you mean maxConnections?)',
        'upstreams.a.auth: unknown key refreshTokn (did you mean refreshToken?)',
        'store: unknown key comandTimeoutMs (did you mean commandTimeoutMs?)',
      ]),
    );
    // Nothing close: no guess.
    expect(configErrorOf(() => parseConfig(`${collaborate}\nzebra: 1\n`, { env: {} })).problems).toContain(
      '(top level): unknown key zebra',
    );
  });

  it('reports an unreadable config file with its path and no stack', () => {
    const dir = tempDir();
    const missing = join(dir, 'nope.yaml');
    const error = configErrorOf(() => loadConfigFile(missing, { env: {} }));
    expect(error.problems).toEqual([`${missing}: cannot read the config file (ENOENT)`]);
  });
});

describe('parseConfig: …File secrets', () => {
  it('reads clientSecretFile and refreshTokenFile relative to the config file, stripping one trailing newline', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secret.txt'), 's3cret-from-file\n');
    writeFileSync(join(dir, 'seed.txt'), 'seed-with-two-newlines\n\n');
    writeFileSync(join(dir, 'id.txt'), 'crlf-id\r\n');
    const file = join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      collaborate
        .replace('clientSecret: the-secret', 'clientSecretFile: ./secret.txt')
        .replace('refreshToken: the-seed', `refreshTokenFile: ${join(dir, 'seed.txt')}`)
        .replace('clientId: the-client', 'clientIdFile: id.txt'),
    );
    const auth = upstream(loadConfigFile(file, { env: {} }), 'collaborate').auth;
    expect(auth.clientSecret?.reveal()).toBe('s3cret-from-file');
    expect(auth.refreshToken?.reveal()).toBe('seed-with-two-newlines\n');
    expect(auth.clientId).toBe('crlf-id');
  });

  it('interpolates the path of a …File key', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secret.txt'), 'env-located');
    const yaml = collaborate.replace('clientSecret: the-secret', 'clientSecretFile: ${SECRETS_DIR}/secret.txt');
    expect(upstream(parseConfig(yaml, { env: { SECRETS_DIR: dir } }), 'collaborate').auth.clientSecret?.reveal()).toBe('env-located');
  });

  it('is a problem to set both a key and its …File twin, and to name an unreadable file; both are reported together', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secret.txt'), 'x');
    const unreadable = join(dir, 'unreadable.txt');
    writeFileSync(unreadable, 'x');
    chmodSync(unreadable, 0o000);
    const yaml = collaborate
      .replace('clientSecret: the-secret', `clientSecret: inline\n      clientSecretFile: ${join(dir, 'secret.txt')}`)
      .replace('refreshToken: the-seed', `refreshTokenFile: ${join(dir, 'missing.txt')}`)
      .replace('clientId: the-client', `clientIdFile: ${dir}`);
    const error = configErrorOf(() => parseConfig(yaml, { env: {} }));
    expect(error.problems).toEqual(
      expect.arrayContaining([
        'upstreams.collaborate.auth.clientSecretFile: set either clientSecret or clientSecretFile, not both',
        `upstreams.collaborate.auth.refreshTokenFile: cannot read ${join(dir, 'missing.txt')} (ENOENT)`,
        `upstreams.collaborate.auth.clientIdFile: cannot read ${dir} (EISDIR)`,
      ]),
    );
    expect(error.problems).toHaveLength(3);
    // A file without read permission is also a problem (root ignores permissions, so only check when it applies).
    if (process.getuid?.() !== 0) {
      const denied = configErrorOf(() =>
        parseConfig(collaborate.replace('clientSecret: the-secret', `clientSecretFile: ${unreadable}`), { env: {} }),
      );
      expect(denied.problems).toEqual([`upstreams.collaborate.auth.clientSecretFile: cannot read ${unreadable} (EACCES)`]);
    }
  });

  it('rejects an empty …File path', () => {
    const error = configErrorOf(() => parseConfig(collaborate.replace('clientSecret: the-secret', 'clientSecretFile: ""'), { env: {} }));
    expect(error.problems).toEqual(['upstreams.collaborate.auth.clientSecretFile: expected a file path']);
  });
});

describe('parseConfig: credentials and presets', () => {
  it('starts an upstream with empty credentials in the needs-credentials state instead of failing', () => {
    const yaml = `
upstreams:
  my-collab:
    target: https://acme.highq.com/acme/api
    auth:
      preset: collaborate
      tokenUrl: https://acme.highq.com/acme/api/oauth2/token
      clientId: \${COLLABORATE_CLIENT_ID:-}
      clientSecret: \${COLLABORATE_CLIENT_SECRET:-}
      refreshToken: \${COLLABORATE_REFRESH_TOKEN:-}
`;
    const auth = upstream(parseConfig(yaml, { env: {} }), 'my-collab').auth;
    expect(auth.clientId).toBeUndefined();
    expect(auth.clientSecret).toBeUndefined();
    expect(auth.refreshToken).toBeUndefined();
    expect(auth.missing).toEqual([
      'auth.clientId (e.g. export MY_COLLAB_CLIENT_ID=… and restart)',
      'auth.clientSecret (e.g. export MY_COLLAB_CLIENT_SECRET=… and restart)',
    ]);
  });

  it('apiax needs no secret and defaults clientId to integration-api', () => {
    const yaml =
      'upstreams:\n  apiax:\n    target: https://api.apiax.io\n    auth: { preset: apiax, tokenUrl: https://auth.apiax.io/token }\n';
    const up = upstream(parseConfig(yaml, { env: {} }), 'apiax');
    expect(up.auth.clientId).toBe('integration-api');
    expect(up.auth.clientSecret).toBeUndefined();
    expect(up.auth.missing).toEqual([]);
    expect(up.auth.clientAuth).toBe('none');
    expect([...up.replayOn]).toEqual([401]);
  });

  it('applies each preset’s defaults', () => {
    const yaml = ['collaborate', 'apiax', 'v3', 'oauth2']
      .map(
        (preset) =>
          `  ${preset}:\n    target: https://e.com/${preset}\n    auth: { preset: ${preset}, tokenUrl: https://e.com/token, clientId: id, clientSecret: s }\n`,
      )
      .join('');
    const config = parseConfig(`upstreams:\n${yaml}`, { env: {} });
    const summary = Object.fromEntries(
      config.upstreams.map((up) => [
        up.name,
        { replayOn: [...up.replayOn].sort(), clientAuth: up.auth.clientAuth, bodyEncoding: up.auth.bodyEncoding },
      ]),
    );
    expect(summary).toEqual({
      collaborate: { replayOn: [401, 403], clientAuth: 'body', bodyEncoding: 'form' },
      apiax: { replayOn: [401], clientAuth: 'none', bodyEncoding: 'form' },
      v3: { replayOn: [401], clientAuth: 'headers', bodyEncoding: 'form' },
      oauth2: { replayOn: [401], clientAuth: 'basic', bodyEncoding: 'form' },
    });
    expect(upstream(config, 'v3').auth.clientIdHeader).toBe('x-ibm-client-id');
    expect(upstream(config, 'v3').auth.clientSecretHeader).toBe('x-ibm-client-secret');
  });

  it('lets replayOn, clientAuth, bodyEncoding, stripHeaders and the refresh rule override the preset', () => {
    const yaml = `
upstreams:
  v3:
    target: https://api.nordeaopenbanking.com
    replayOn: [401, 419]
    stripHeaders: [X-Api-Key, Cookie]
    auth:
      preset: v3
      tokenUrl: https://api.nordeaopenbanking.com/v3/authorize/token
      clientId: id
      clientSecret: s
      clientAuth: basic
      bodyEncoding: json
      earlyRefreshFraction: 0.5
      earlyRefreshSeconds: 10
`;
    const up = upstream(parseConfig(yaml, { env: {} }), 'v3');
    expect([...up.replayOn]).toEqual([401, 419]);
    expect(up.stripHeaders).toEqual(['x-api-key', 'cookie']);
    expect(up.auth.clientAuth).toBe('basic');
    expect(up.auth.bodyEncoding).toBe('json');
    expect(up.auth.earlyRefreshFraction).toBe(0.5);
    expect(up.auth.earlyRefreshSeconds).toBe(10);
  });

  it('rejects out-of-range overrides', () => {
    const yaml = collaborate
      .replace('refreshToken: the-seed', 'refreshToken: x\n      earlyRefreshFraction: 1\n      clientAuth: cookie')
      .replace('    auth:', '    replayOn: [200]\n    stripHeaders: ["bad header"]\n    auth:');
    const problems = configErrorOf(() => parseConfig(yaml, { env: {} })).problems.join('\n');
    expect(problems).toMatch(/^upstreams\.collaborate\.auth\.earlyRefreshFraction: /m);
    expect(problems).toMatch(/^upstreams\.collaborate\.auth\.clientAuth: /m);
    expect(problems).toMatch(/^upstreams\.collaborate\.replayOn\.0: /m);
    expect(problems).toMatch(/^upstreams\.collaborate\.stripHeaders\.0: must be a header name$/m);
  });
});

describe('parseConfig: the result', () => {
  const secrets = {
    CID: 'client-id-visible',
    CS: 'client-secret-Zq81',
    RT: 'refresh-seed-Vx42',
    PW: 'password-Pp17',
    TPP: 'tpp-token-Tt93',
  };
  const yaml = `
upstreams:
  v3:
    target: https://api.nordeaopenbanking.com
    auth:
      preset: v3
      tokenUrl: https://api.nordeaopenbanking.com/v3/authorize-decoupled/token
      clientId: \${CID}
      clientSecret: \${CS}
      refreshToken: \${RT}
      username: someone
      password: \${PW}
      tppToken: \${TPP}
`;

  it('prints Secret values as [secret] in JSON.stringify, util.inspect and string conversion', () => {
    const config = parseConfig(yaml, { env: secrets });
    const auth = upstream(config, 'v3').auth;
    const printed = [
      JSON.stringify(config),
      inspect(config, { depth: Infinity }),
      inspect(auth, { depth: Infinity, showHidden: true }),
      `${auth.clientSecret}`,
      String(auth.refreshToken),
    ];
    for (const text of printed) {
      for (const name of ['CS', 'RT', 'PW', 'TPP'] as const) expect(text).not.toContain(secrets[name]);
    }
    expect(JSON.parse(JSON.stringify(auth))).toMatchObject({
      clientSecret: '[secret]',
      refreshToken: '[secret]',
      password: '[secret]',
      tppToken: '[secret]',
    });
    expect(inspect(auth)).toContain('clientSecret: [secret]');
    // The values are still there for the code that needs them.
    expect(auth.clientSecret?.reveal()).toBe(secrets.CS);
    expect(auth.refreshToken?.reveal()).toBe(secrets.RT);
    expect(auth.password?.reveal()).toBe(secrets.PW);
    expect(auth.tppToken?.reveal()).toBe(secrets.TPP);
  });

  it('is deeply frozen', () => {
    const config = parseConfig(yaml, { env: secrets });
    const up = upstream(config, 'v3');
    for (const object of [
      config,
      config.listen,
      config.log,
      config.store,
      config.upstreams,
      up,
      up.auth,
      up.stripHeaders,
      up.auth.missing,
    ]) {
      expect(Object.isFrozen(object)).toBe(true);
    }
    expect(() => {
      (config as { drainTimeoutMs: number }).drainTimeoutMs = 1;
    }).toThrow(TypeError);
    expect(() => {
      (up.auth as { tokenUrl: string }).tokenUrl = 'https://evil.example/token';
    }).toThrow(TypeError);
    expect(() => (config.upstreams as UpstreamConfig[]).push(up)).toThrow(TypeError);
  });
});

describe('parseConfig: store.encryptionKey', () => {
  const withKey = (key: string) => `store: { type: redis, url: "redis://127.0.0.1:6379/0", encryptionKey: "${key}" }\n${collaborate}`;
  const keyOf = (key: string): Buffer | undefined => {
    const store = parseConfig(withKey(key)).store;
    return store.type === 'redis' ? store.encryptionKey : undefined;
  };
  const expectRefused = (key: string) => {
    expect(configErrorOf(() => parseConfig(withKey(key))).problems, JSON.stringify(key)).toEqual([
      'store.encryptionKey: must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -base64 32)',
    ]);
  };

  it('takes 64 hex digits and the canonical base64 of 32 bytes', () => {
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, index) => (index * 37 + 11) % 256));
    expect(keyOf(bytes.toString('hex'))?.equals(bytes)).toBe(true);
    expect(keyOf(bytes.toString('hex').toUpperCase())?.equals(bytes)).toBe(true);
    expect(bytes.toString('base64')).toMatch(/^(?=.*\+)(?=.*\/)/); // both non-alphanumeric base64 characters occur
    expect(keyOf(bytes.toString('base64'))?.equals(bytes)).toBe(true);
  });

  it('refuses text that Buffer.from(…, "base64") would still turn into 32 bytes, and other lengths', () => {
    const canonical = Buffer.alloc(32, 7).toString('base64'); // "BwcH…Bwc="
    expect(keyOf(canonical)?.equals(Buffer.alloc(32, 7))).toBe(true);
    const garbage = [
      'correct-horse-battery-staple-my-password-ok', // a passphrase: Node reads "-" as base64url
      canonical.slice(0, 43), // unpadded
      `${canonical.slice(0, 43)}.`, // a stray character where the padding goes is skipped
      `${canonical.slice(0, 21)} ${canonical.slice(21)}`, // so is a space inside
      `${canonical.slice(0, 42)}d=`, // non-zero pad bits: the same 32 bytes, but not the canonical text
    ];
    for (const key of garbage) {
      expect(Buffer.from(key, 'base64').length, JSON.stringify(key)).toBe(32); // what a length check alone would accept
      expectRefused(key);
    }
    for (const key of ['short', 'ab'.repeat(31), `${'ab'.repeat(31)}zz`, 'ab'.repeat(33), Buffer.alloc(33, 7).toString('base64')])
      expectRefused(key);
  });
});
