import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ensureBuilt, repoRoot, runCli, startCli, type CliResult } from '../helpers/run-cli.js';

// Distinctive values: if any of them shows up in the CLI's output, a secret leaked.
const SECRETS = {
  CLI_TEST_CLIENT_SECRET: 'cs-Qk7vX2pLm9-secret',
  CLI_TEST_REFRESH_TOKEN: 'rt-Zw4nB8tHy3-seed',
};
const CLIENT_ID = 'cli-test-client';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-cli-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(dir: string, yaml: string, name = 'proxy.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

function goodConfig(
  tokenUrl = 'https://acme.highq.com/acme/api/oauth2/token',
  target = 'https://acme.highq.com/acme/api',
  top = '',
): string {
  return `${top}listen: 127.0.0.1:0
admin: 127.0.0.1:0
store: { type: file, path: ./data/tokens.json }
upstreams:
  collaborate:
    target: ${target}
    auth:
      preset: collaborate
      tokenUrl: ${tokenUrl}
      clientId: ${CLIENT_ID}
      clientSecret: \${CLI_TEST_CLIENT_SECRET}
      refreshToken: \${CLI_TEST_REFRESH_TOKEN}
`;
}

function expectNoSecrets(result: Pick<CliResult, 'stdout' | 'stderr'>): void {
  for (const value of Object.values(SECRETS)) {
    expect(result.stdout).not.toContain(value);
    expect(result.stderr).not.toContain(value);
  }
}

function expectNoStack(text: string): void {
  expect(text).not.toMatch(/^\s+at .+(:\d+:\d+\)?|\(node:)/m);
  expect(text).not.toMatch(/\.(ts|js):\d+/);
}

/** How the tests run the CLI (node bin/oauth-sidecar.js from the repository root), so how its hints name it. */
const PROGRAM = './bin/oauth-sidecar.js';

describe('oauth-sidecar --help', () => {
  it('prints the main usage, naming the program as it was run, and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: ${PROGRAM} [<command>] [options]`);
    for (const command of ['serve', 'check', 'seed', 'login', 'status', 'inject-webhook', 'schema'])
      expect(result.stdout).toMatch(new RegExp(`\\n {2}${command} `));
    expect(result.stdout).toContain('never from the command line');
    expect(result.stderr).toBe('');
    expect((await runCli(['help'])).stdout).toBe(result.stdout);
  });

  it('prints the help of one command for `check --help`, `serve -h` and `help seed`', async () => {
    const check = await runCli(['check', '--help']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^Usage: \.\/bin\/oauth-sidecar\.js check \[--config FILE\]\n/);
    expect(check.stdout).toContain('-c, --config FILE');
    expect(check.stdout).not.toContain('Commands:');
    const serve = await runCli(['serve', '-h']);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/^Usage: \.\/bin\/oauth-sidecar\.js \[serve\] \[--config FILE\]\n/);
    expect(serve.stdout).toContain('SIGTERM');
    const seed = await runCli(['help', 'seed']);
    expect(seed.code).toBe(0);
    expect(seed.stdout).toMatch(/^Usage: \.\/bin\/oauth-sidecar\.js seed \[--config FILE\] \[--force\] <upstream>\n/);
    expect(seed.stdout).toContain(`| ${PROGRAM} seed collaborate`);
  });

  it('answers --help without the operand or the options a run needs', async () => {
    for (const args of [
      ['seed', '--help'],
      ['login', '-h'],
      ['inject-webhook', '--help'],
    ]) {
      const result = await runCli(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout, args.join(' ')).toMatch(new RegExp(`^Usage: \\./bin/oauth-sidecar\\.js ${args[0]} `));
      expect(result.stderr).toBe('');
    }
  });

  it('names the bin script by its path when run from another directory', async () => {
    const result = await runCli(['status', '--help'], { cwd: tempDir() });
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith(`Usage: ${join(repoRoot, 'bin', 'oauth-sidecar.js')} status `), result.stdout.split('\n')[0]).toBe(
      true,
    );
  });

  it('prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
    expect((await runCli(['status', '-v'])).stdout.trim()).toBe(pkg.version);
  });
});

describe('oauth-sidecar: usage errors exit 2', () => {
  it('an unknown command', async () => {
    const result = await runCli(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stderr).toContain(`see ${PROGRAM} --help`);
    expect(result.stderr).toContain('Usage:');
    expect(result.stdout).toBe('');
  });

  it('--config without a value: one line naming the option and the help to read, then the Usage line', async () => {
    const result = await runCli(['check', '--config']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `oauth-sidecar: --config needs a file path; see ${PROGRAM} check --help\nUsage: ${PROGRAM} check [--config FILE]\n`,
    );
    expect(result.stdout).toBe('');
  });

  it('an option of the wrong command, and a value for a flag', async () => {
    const force = await runCli(['status', '--force']);
    expect(force.code).toBe(2);
    expect(force.stderr).toContain(`unknown option "--force"; see ${PROGRAM} status --help`);
    const json = await runCli(['status', '--json=yes']);
    expect(json.code).toBe(2);
    expect(json.stderr).toContain('--json takes no value');
  });

  it('secrets are never taken from argv: --client-secret and friends are unknown options, and their values are not echoed', async () => {
    for (const args of [
      ['--client-secret', SECRETS.CLI_TEST_CLIENT_SECRET],
      ['serve', `--client-secret=${SECRETS.CLI_TEST_CLIENT_SECRET}`],
      ['check', `--refresh-token=${SECRETS.CLI_TEST_REFRESH_TOKEN}`],
      ['check', SECRETS.CLI_TEST_REFRESH_TOKEN],
    ]) {
      const result = await runCli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/unknown option "--(client-secret|refresh-token)"|check takes no arguments/);
      expectNoSecrets(result);
    }
  });
});

describe('oauth-sidecar check', () => {
  it('prints a summary of a valid config without any secret value and exits 0', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, goodConfig());
    const result = await runCli(['check', '--config', config], { env: SECRETS });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`config ${config}: valid`);
    expect(result.stdout).toContain('upstream collaborate');
    expect(result.stdout).toContain('/collaborate/… -> https://acme.highq.com/acme/api/…');
    expect(result.stdout).toContain('preset       collaborate (client auth: body, body: form)');
    expect(result.stdout).toContain('clientId set, clientSecret set, refreshToken seed set');
    expect(result.stdout).toContain(`store   file ${join(dir, 'data', 'tokens.json')}`);
    expect(result.stdout).toContain('replay on    401, 403');
    expect(result.stdout).not.toContain(CLIENT_ID);
    expectNoSecrets(result);
  });

  it('reads the config named by OAUTH_SIDECAR_CONFIG, and ./proxy.yaml by default', async () => {
    const dir = tempDir();
    const named = writeConfig(dir, goodConfig(), 'named.yaml');
    const fromEnv = await runCli(['check'], { env: { ...SECRETS, OAUTH_SIDECAR_CONFIG: named } });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stdout).toContain(`config ${named}: valid`);

    writeConfig(dir, goodConfig());
    const byDefault = await runCli(['check'], { env: SECRETS, cwd: dir });
    expect(byDefault.code).toBe(0);
    expect(byDefault.stdout).toContain(`config ${join(dir, 'proxy.yaml')}: valid`);
  });

  it('warns, without failing, about plain http:// token URLs and targets beyond loopback, naming upstream and setting', async () => {
    const dir = tempDir();
    const plain = writeConfig(
      dir,
      goodConfig('http://auth.example.test/oauth2/token', 'http://api.example.test:8081/acme/api'),
      'plain.yaml',
    );
    const result = await runCli(['check', '--config', plain], { env: SECRETS });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`config ${plain}: valid`);
    const warnings = result.stdout.split('\n').filter((line) => line.startsWith('WARNING'));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^WARNING upstreams\.collaborate\.auth\.tokenUrl is http:\/\/ to auth\.example\.test: .*refresh tokens.*clear text; use https:\/\/$/,
      ),
      expect.stringMatching(
        /^WARNING upstreams\.collaborate\.target is http:\/\/ to api\.example\.test:8081: .*bearer token in clear text; use https:\/\/$/,
      ),
    ]);
    expectNoSecrets(result);

    // https:// anywhere, and http:// to loopback (which never leaves the host), are quiet.
    for (const [tokenUrl, target] of [
      ['https://auth.example.test/oauth2/token', 'https://api.example.test/acme/api'],
      ['http://127.0.0.1:9000/oauth2/token', 'http://localhost:9001/acme/api'],
      ['http://[::1]:9000/oauth2/token', 'https://api.example.test/acme/api'],
    ] as const) {
      const quiet = await runCli(['check', '--config', writeConfig(dir, goodConfig(tokenUrl, target))], { env: SECRETS });
      expect(quiet.code, tokenUrl).toBe(0);
      expect(quiet.stdout, tokenUrl).not.toContain('WARNING');
    }
  });

  it('says which credentials are missing instead of failing when they are empty', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, goodConfig().replace('${CLI_TEST_CLIENT_SECRET}', '${CLI_TEST_CLIENT_SECRET:-}'));
    const result = await runCli(['check', '--config', config], { env: { CLI_TEST_REFRESH_TOKEN: SECRETS.CLI_TEST_REFRESH_TOKEN } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('clientSecret not set');
    expect(result.stdout).toContain('NEEDS CREDENTIALS: auth.clientSecret (e.g. export COLLABORATE_CLIENT_SECRET=… and restart)');
  });

  it('lists every problem of a bad config with its path, without a stack trace, and exits 1', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      `listen: 8080
colour: blue
upstreams:
  collaborate:
    target: ftp://acme.highq.com/acme/api
    maxConnections: many
    auth:
      preset: collaborate
      tokenUrl: https://acme.highq.com/acme/api/oauth2/token
      clientId: \${CLI_TEST_UNSET_VARIABLE}
      clientSecret: \${CLI_TEST_CLIENT_SECRET}
  other:
    target: https://user:${SECRETS.CLI_TEST_CLIENT_SECRET}@example.com/api
    path: /collaborate
    auth: { preset: oauth2, tokenUrl: https://example.com/token }
`,
    );
    const result = await runCli(['check', '--config', config], { env: SECRETS });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const expected = [
      /upstreams\.collaborate\.auth\.clientId: environment variable CLI_TEST_UNSET_VARIABLE is not set/,
      /^ {2}- listen: /m,
      /\(top level\): unknown key colour/,
      /upstreams\.collaborate\.target: expected an http:\/\/ or https:\/\/ URL/,
      /upstreams\.collaborate\.maxConnections: .*expected number/,
      /upstreams\.other\.target: credentials in the URL are not allowed/,
    ];
    for (const problem of expected) expect(result.stderr).toMatch(problem);
    expect(result.stderr.match(/^ {2}- /gm)).toHaveLength(expected.length);
    expectNoStack(result.stderr);
    expectNoSecrets(result);
  });

  it('a missing config file exits 1 and names the file', async () => {
    const dir = tempDir();
    const result = await runCli(['check', '--config', join(dir, 'absent.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(dir, 'absent.yaml')}: cannot read the config file (ENOENT)`);
    expectNoStack(result.stderr);
  });

  it('serve with a bad config exits 1 the same way, before listening', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, 'listen: nowhere\nupstreams: {}\n');
    const result = await runCli(['serve', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('listen: expected host:port');
    expect(result.stderr).toContain('upstreams: at least one upstream is required');
    expectNoStack(result.stderr);
  });
});

/** A token endpoint and a resource API on one server; `/api/slow?ms=N` answers after N ms. */
async function startUpstream(): Promise<{ url: string; arrived: (path: string) => Promise<IncomingMessage>; tokenCalls: () => number }> {
  let tokenCalls = 0;
  const waiting = new Map<string, (req: IncomingMessage) => void>();
  const seen = new Map<string, IncomingMessage>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      tokenCalls += 1;
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ access_token: `at-${tokenCalls}`, refresh_token: `rt-${tokenCalls}`, expires_in: 3600, token_type: 'bearer' }),
      );
      return;
    }
    seen.set(url.pathname, req);
    waiting.get(url.pathname)?.(req);
    const delay = Number(url.searchParams.get('ms') ?? 0);
    const timer = setTimeout(() => res.end(`done ${url.pathname}`), delay);
    res.on('close', () => clearTimeout(timer));
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrived: (path) => {
      const already = seen.get(path);
      return already ? Promise.resolve(already) : new Promise((resolve) => waiting.set(path, resolve));
    },
    tokenCalls: () => tokenCalls,
  };
}

/** GET through the proxy; resolves with status and body, or with the error (e.g. a dropped connection). */
function get(url: string): Promise<{ status: number; body: string } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
}

async function startServing(drainTimeoutMs: number) {
  const upstream = await startUpstream();
  const dir = tempDir();
  const config = writeConfig(dir, goodConfig(`${upstream.url}/token`, `${upstream.url}/api`, `drainTimeoutMs: ${drainTimeoutMs}\n`));
  const cli = startCli(['serve', '--config', config], { env: SECRETS });
  const started = await cli.waitForLog((line) => line.event === 'started');
  const proxyUrl = String(started.proxy);
  const adminUrl = String(started.admin);
  return { upstream, cli, started, proxyUrl, adminUrl, dir };
}

describe('oauth-sidecar serve', () => {
  it('logs the started line with the real URL, serves, and on SIGTERM drains an in-flight request, then exits 0', async () => {
    const { upstream, cli, started, proxyUrl, adminUrl } = await startServing(10_000);
    expect(proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(proxyUrl).not.toMatch(/:0$/);
    expect(started.msg).toBe(`oauth-sidecar listening on ${proxyUrl}`);
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);

    const fast = await get(`${proxyUrl}/collaborate/fast`);
    expect(fast).toEqual({ status: 200, body: 'done /api/fast' });

    const slow = get(`${proxyUrl}/collaborate/slow?ms=800`);
    await upstream.arrived('/api/slow');
    cli.child.kill('SIGTERM');
    await cli.waitForLog((line) => line.event === 'draining');
    // No new connections once draining has begun.
    // (A connection that races the close may be accepted and then reset; either way it is not served.)
    const refused = await get(`${proxyUrl}/collaborate/fast`);
    expect('error' in refused && refused.error.code).toMatch(/^(ECONNREFUSED|ECONNRESET)$/);
    expect(await slow).toEqual({ status: 200, body: 'done /api/slow' });

    const result = await cli.exited;
    expect(result.code).toBe(0);
    expect(result.signal).toBeNull();
    expect(cli.logs().some((line) => line.event === 'stopped')).toBe(true);
    expect(upstream.tokenCalls()).toBe(1);
    expectNoSecrets(result);
    // The rotated tokens are not in the log either.
    expect(result.stdout).not.toContain('rt-1');
    expect(result.stdout).not.toMatch(/"at-1"|Bearer at-1/);
  });

  it('exits 0 at once on SIGINT when nothing is in flight', async () => {
    const { cli } = await startServing(10_000);
    const sentAt = Date.now();
    cli.child.kill('SIGINT');
    const result = await cli.exited;
    expect(result, JSON.stringify(result)).toMatchObject({ code: 0 });
    expect(Date.now() - sentAt).toBeLessThan(3_000);
  });

  it('a second signal during a slow in-flight request exits at once, without waiting for the drain', async () => {
    const { upstream, cli, proxyUrl } = await startServing(20_000);
    const slow = get(`${proxyUrl}/collaborate/slow?ms=15000`);
    await upstream.arrived('/api/slow');
    cli.child.kill('SIGTERM');
    await cli.waitForLog((line) => line.event === 'draining');
    const secondAt = Date.now();
    cli.child.kill('SIGINT');
    const result = await cli.exited;
    expect(Date.now() - secondAt).toBeLessThan(3_000);
    expect(result.signal).toBeNull();
    expect(result.code).not.toBe(0);
    expect(cli.logs().some((line) => line.event === 'forced_exit')).toBe(true);
    // The client's connection is cut rather than answered.
    expect('error' in (await slow)).toBe(true);
  });

  it('ends the drain after drainTimeoutMs and still exits 0', async () => {
    const { upstream, cli, proxyUrl } = await startServing(300);
    const slow = get(`${proxyUrl}/collaborate/slow?ms=15000`);
    await upstream.arrived('/api/slow');
    const sentAt = Date.now();
    cli.child.kill('SIGTERM');
    const result = await cli.exited;
    expect(result.code).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(cli.logs().some((line) => line.event === 'drain_timeout')).toBe(true);
    expect('error' in (await slow)).toBe(true);
  });

  it('exits 1 with a clear message when the listen port is taken', async () => {
    const blocker = createServer();
    onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as AddressInfo;
    const dir = tempDir();
    const config = writeConfig(
      dir,
      goodConfig()
        .replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`)
        .replace('${CLI_TEST_REFRESH_TOKEN}', '${CLI_TEST_REFRESH_TOKEN:-}'),
    );
    const result = await runCli(['serve', '--config', config], { env: { CLI_TEST_CLIENT_SECRET: SECRETS.CLI_TEST_CLIENT_SECRET } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot start: .*EADDRINUSE/);
    expectNoStack(result.stderr);
    expectNoSecrets(result);
  });
});
