/**
 * `oauth-sidecar login` against a real, strict OpenID provider (panva's oidc-provider, see
 * test/helpers/oidc-provider.ts), then the proxy living on what it stored: the login CLI runs as a child
 * process, the browser's part (sign-in, consent) is played over HTTP, the tokens land in a file store, and
 * a proxy process started on that store refreshes against the same provider (rotating refresh tokens)
 * when the upstream rejects its token. Also: what a strict provider does without offline_access (no
 * refresh token, so login stores nothing), and a live record kept without --force.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../src/store/file-store.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import { authorizeInBrowser, startOidcProvider, type OidcProvider } from '../helpers/oidc-provider.js';
import { startPlainUpstream } from '../helpers/plain-upstream.js';
import { ADDRESS_IN_USE, retryOnAddressInUse } from '../helpers/ports.js';
import { startProxyProcess, waitUntil, writeProxyConfig } from '../helpers/proxy-process.js';
import { ensureBuilt, startCli, type CliResult, type RunningCli } from '../helpers/run-cli.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

interface LoginRun {
  readonly provider: OidcProvider;
  readonly configPath: string;
  readonly storePath: string;
  readonly cli: RunningCli;
  /** The authorize URL the login printed; undefined when it exited before printing one. */
  readonly authorizeUrl: URL | undefined;
}

/**
 * Starts a provider whose client's one redirect URI is http://127.0.0.1:<port>/callback, and the real login
 * CLI listening on that port (`--listen`): the port is chosen up front (below the ephemeral range) and the
 * whole start is retried in the rare case another test's explicit bind holds it.
 */
async function startLogin(options: {
  scope: string;
  /** YAML flow map of auth.authorizeParams, e.g. "{ prompt: login }". */
  authorizeParams?: string;
  upstreamTarget?: string;
  before?: (storePath: string) => Promise<void>;
}): Promise<LoginRun> {
  return retryOnAddressInUse('the login callback', async (port) => {
    const provider = await startOidcProvider({ redirectUri: `http://127.0.0.1:${port}/callback` });
    const configPath = writeProxyConfig(
      `listen: 127.0.0.1:0
admin: 127.0.0.1:0
store: { type: file, path: ./tokens.json }
upstreams:
  oidc:
    target: ${options.upstreamTarget ?? 'http://127.0.0.1:9'}
    auth:
      preset: oauth2
      tokenUrl: ${provider.tokenUrl}
      authorizeUrl: ${provider.authorizeUrl}
      clientId: ${provider.clientId}
      clientSecret: \${OIDC_CLIENT_SECRET}
      scope: "${options.scope}"
      authorizeParams: ${options.authorizeParams ?? '{}'}
`,
    );
    const storePath = join(dirname(configPath), 'tokens.json');
    await options.before?.(storePath);
    const cli = startCli(['login', 'oidc', '--config', configPath, '--listen', `127.0.0.1:${port}`, '--timeout', '30'], {
      env: { OIDC_CLIENT_SECRET: provider.clientSecret },
      cwd: dirname(configPath),
    });
    await waitUntil('the authorize URL or the end of login', () => /\/auth\?\S+/.test(cli.stderr()) || cli.child.exitCode !== null, 15_000);
    if (/EADDRINUSE/.test(cli.stderr())) {
      await provider.close();
      return ADDRESS_IN_USE;
    }
    const printed = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/.exec(cli.stderr())?.[1];
    return { provider, configPath, storePath, cli, authorizeUrl: printed === undefined ? undefined : new URL(printed) };
  });
}

function storedRecord(storePath: string): TokenRecord | undefined {
  try {
    return (JSON.parse(readFileSync(storePath, 'utf8')) as { records: Record<string, TokenRecord> }).records.oidc;
  } catch {
    return undefined;
  }
}

function expectNoSecrets(result: CliResult, secrets: readonly (string | undefined)[]): void {
  for (const secret of secrets) if (secret) expect(result.stdout + result.stderr).not.toContain(secret);
}

describe('login against a real OpenID provider (oidc-provider), then the proxy on what it stored', () => {
  it('signs in and consents in the browser, stores a refresh token, and the proxy refreshes (rotating) when the upstream rejects its token', async () => {
    let rejectNext = false;
    const seen: { token: string; status: number }[] = [];
    // The upstream is configured before the provider exists (the login's config names both).
    const issuer: { provider?: OidcProvider } = {};
    const upstream = await startPlainUpstream((req, res) => {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      void (async () => {
        const valid = issuer.provider !== undefined && token !== '' && (await issuer.provider.isValidAccessToken(token));
        const status = valid && !rejectNext ? 200 : 401;
        if (valid) rejectNext = false;
        seen.push({ token, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: status === 200 }));
      })();
    });
    const run = await startLogin({ scope: 'openid offline_access', upstreamTarget: upstream.origin });
    const { provider } = run;
    issuer.provider = provider;
    const { authorizeUrl } = run;
    if (!authorizeUrl) throw new Error(`login printed no authorize URL:\n${run.cli.stderr()}`);
    // OpenID Connect Core §11: offline_access is honoured only with prompt=consent.
    expect(authorizeUrl.searchParams.get('prompt')).toBe('consent');
    expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');

    // A forged redirect to the callback (someone else's code, a wrong state) is turned away and the login keeps waiting.
    const forged = new URL(authorizeUrl.searchParams.get('redirect_uri') ?? '');
    forged.search = new URLSearchParams({ code: 'code-of-another-login', state: 'forged-state' }).toString();
    expect((await fetch(forged)).status).toBe(400);

    const browser = await authorizeInBrowser(authorizeUrl.toString());
    expect(browser.prompts).toEqual(['login', 'consent']);
    expect(browser.redirect.searchParams.get('state')).toBe(authorizeUrl.searchParams.get('state'));
    expect(browser.status).toBe(200);
    expect(browser.body).toContain('Login succeeded');
    const login = await run.cli.exited;
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/^logged in oidc: generation 1, access token [0-9a-f]{8}, refresh token [0-9a-f]{8} \(file /);
    expect(provider.grants).toEqual(['authorization_code']);

    const first = storedRecord(run.storePath);
    expect(first).toMatchObject({ generation: 1, source: 'authorization_code', writer: 'login-command' });
    expect(first?.refreshToken).toEqual(expect.any(String));
    expect(await provider.isValidAccessToken(first?.accessToken ?? '')).toBe(true);
    expectNoSecrets(login, [
      first?.accessToken,
      first?.refreshToken,
      provider.clientSecret,
      browser.redirect.searchParams.get('code') ?? undefined,
    ]);

    const proxy = await startProxyProcess(run.configPath, 'proxy', { OIDC_CLIENT_SECRET: provider.clientSecret });
    const ok = await fetch(`${proxy.url}/oidc/resource`);
    expect(ok.status).toBe(200);
    expect(seen).toEqual([{ token: first?.accessToken, status: 200 }]);

    // The upstream turns the current token down once: the proxy refreshes at the provider and replays.
    rejectNext = true;
    const replayed = await fetch(`${proxy.url}/oidc/resource`);
    expect(replayed.status).toBe(200);
    expect(seen.slice(1).map((request) => request.status)).toEqual([401, 200]);
    expect(seen[1]?.token).toBe(first?.accessToken);
    const refreshedToken = seen[2]?.token ?? '';
    expect(refreshedToken).not.toBe(first?.accessToken);
    expect(await provider.isValidAccessToken(refreshedToken)).toBe(true);
    expect(provider.grants).toEqual(['authorization_code', 'refresh_token']);
    expect(provider.grantErrors).toEqual([]);
    // Rotation: the refresh token login stored is spent, and the proxy stored the new one.
    expect(provider.consumedRefreshTokens()).toBe(1);
    await waitUntil('the refreshed record in the file', () => storedRecord(run.storePath)?.generation === 2, 5_000);
    const second = storedRecord(run.storePath);
    expect(second).toMatchObject({ generation: 2, source: 'refresh', accessToken: refreshedToken });
    expect(second?.refreshToken).toEqual(expect.any(String));
    expect(second?.refreshToken).not.toBe(first?.refreshToken);
  }, 60_000);

  it.each([
    { case: 'without offline_access', scope: 'openid', authorizeParams: '{}', prompt: null },
    // OpenID Connect Core §11: a strict provider drops offline_access when prompt does not include consent.
    { case: 'with offline_access but prompt=login', scope: 'openid offline_access', authorizeParams: '{ prompt: login }', prompt: 'login' },
  ])(
    '$case the provider issues no refresh token: login exits non-zero, says why, and stores nothing',
    async (variant) => {
      const run = await startLogin({ scope: variant.scope, authorizeParams: variant.authorizeParams });
      const { authorizeUrl } = run;
      if (!authorizeUrl) throw new Error(`login printed no authorize URL:\n${run.cli.stderr()}`);
      expect(authorizeUrl.searchParams.get('prompt')).toBe(variant.prompt);
      const browser = await authorizeInBrowser(authorizeUrl.toString());
      expect(browser.status).toBe(502);
      const login = await run.cli.exited;
      expect(login.code).toBe(1);
      expect(login.stderr).toContain('issued an access token but no refresh token');
      expect(login.stderr).toContain('put offline_access into auth.scope');
      expect(login.stdout).toBe('');
      // The provider did answer the code exchange; what it gave was not stored.
      expect(run.provider.grants).toEqual(['authorization_code']);
      expect(storedRecord(run.storePath)).toBeUndefined();
    },
    60_000,
  );

  it('with a live record and no --force login refuses before the browser step and leaves the record alone', async () => {
    const live: TokenRecord = {
      generation: 3,
      accessToken: 'at-live-Pq81',
      accessTokenExpiresAt: Date.now() + 3_600_000,
      refreshToken: 'rt-live-Zm20',
      obtainedAt: Date.now(),
      source: 'refresh',
      writer: 'replica-a',
    };
    const run = await startLogin({
      scope: 'openid offline_access',
      before: async (storePath) => {
        const store = await createFileStore(storePath);
        try {
          expect(await store.compareAndSet('oidc', 0, live)).toBe('applied');
        } finally {
          await store.close();
        }
      },
    });
    const before = readFileSync(run.storePath, 'utf8');
    const login = await run.cli.exited;
    expect(run.authorizeUrl).toBeUndefined();
    expect(login.code).toBe(1);
    expect(login.stderr).toContain('upstream oidc already has a live record (generation 3); use --force to replace it');
    expect(run.provider.grants).toEqual([]);
    expect(readFileSync(run.storePath, 'utf8')).toBe(before);
    expect(storedRecord(run.storePath)).toEqual(live);
  }, 60_000);
});
