import { s256 } from '../../src/cli/pkce.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildAuthorizeUrl } from '../../src/cli/authorize-url.js';
import { runLogin, type LoginOptions } from '../../src/cli/login.js';
import { ConfigError } from '../../src/errors.js';
import { parseConfig } from '../../src/config/load.js';
import type { AuthConfig, Config } from '../../src/config/types.js';
import { createFileStore } from '../../src/store/file-store.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import { fingerprint } from '../../src/tokens/fingerprint.js';
import { startFakeProvider, type FakeProvider, type FakeProviderOptions, type RecordedRequest } from '../helpers/fake-provider.js';

const CODE_1 = 'code-first-Zq81kPw3';
const CODE_2 = 'code-second-Jr55mQx0';

/** Captures what runLogin prints, and lets a test wait for a line (the authorize URL) to appear. */
class Terminal extends Writable {
  text = '';
  private waiters: (() => void)[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString('utf8');
    for (const waiter of this.waiters.splice(0)) waiter();
    callback();
  }

  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

async function provider(options: FakeProviderOptions): Promise<FakeProvider> {
  const started = await startFakeProvider({ authorizationCodes: [CODE_1, CODE_2], ...options });
  onTestFinished(() => started.close());
  return started;
}

function workspace(upstreamBlock: string, store = ''): { config: Config; storePath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-login-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const storePath = join(dir, 'tokens.json');
  const yaml = `listen: 127.0.0.1:0\nstore: ${store || `{ type: file, path: ${storePath} }`}\nupstreams:\n${upstreamBlock}`;
  return { config: parseConfig(yaml, { env: {} }), storePath };
}

const collaborateBlock = (p: FakeProvider): string => `  collaborate:
    target: ${p.apiBaseUrl}
    auth: { preset: collaborate, tokenUrl: ${p.tokenUrl}, clientId: client-id, clientSecret: client-secret }
`;

const v3Block = (p: FakeProvider): string => `  v3:
    target: ${p.apiBaseUrl}
    auth: { preset: v3, tokenUrl: ${p.tokenUrl}, clientId: client-id, clientSecret: client-secret, scope: ACCOUNTS_BASIC }
`;

function storedRecord(storePath: string, upstream: string): Record<string, unknown> | undefined {
  if (!existsSync(storePath)) return undefined;
  const file = JSON.parse(readFileSync(storePath, 'utf8')) as { records: Record<string, Record<string, unknown>> };
  return file.records[upstream];
}

interface BrowserVisit {
  authorizeUrl: URL;
  /** The callback page the browser was shown. */
  page: { status: number; body: string };
}

interface StartedLogin {
  result: Promise<string>;
  terminal: Terminal;
  authorizeUrl: URL;
  /** The redirect URI (login's callback) without a query. */
  callbackUrl: URL;
  /** Calls the callback as a browser would, with this query; resolves with the page once it is answered. */
  callback(query: Record<string, string>): Promise<{ status: number; body: string }>;
}

/** Plays the operator: starts the login and reads the printed authorize URL. */
async function startLogin(config: Config, upstream: string, options: Partial<LoginOptions> = {}): Promise<StartedLogin> {
  const terminal = new Terminal();
  const result = runLogin(config, { upstream, out: terminal, ...options });
  result.catch(() => undefined); // awaited by the test; this only keeps an early rejection from going unhandled
  const [printed] = await Promise.race([
    terminal.waitFor(/https?:\/\/\S+(?:authorize|openid-connect\/auth)\S*/),
    result.then(() => [] as string[]),
  ]);
  const authorizeUrl = new URL(printed ?? 'http://missing.invalid');
  const callbackUrl = new URL(authorizeUrl.searchParams.get('redirect_uri') ?? 'http://missing.invalid');
  const callback = async (query: Record<string, string>) => {
    const url = new URL(callbackUrl);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
  };
  return { result, terminal, authorizeUrl, callbackUrl, callback };
}

/**
 * Plays the operator and the browser: starts the login, reads the printed authorize URL, and calls the
 * redirect URI with the query the provider would add (`query(authorizeUrl)`; the fake has no authorize page).
 */
async function login(
  config: Config,
  upstream: string,
  query: (authorizeUrl: URL) => Record<string, string>,
  options: Partial<LoginOptions> = {},
): Promise<{ result: Promise<string>; visit: BrowserVisit; terminal: Terminal }> {
  const started = await startLogin(config, upstream, options);
  const page = await started.callback(query(started.authorizeUrl));
  return { result: started.result, visit: { authorizeUrl: started.authorizeUrl, page }, terminal: started.terminal };
}

function form(request: RecordedRequest | undefined): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(request?.body.toString('utf8') ?? ''));
}

function expectNoSecrets(text: string, p: FakeProvider): void {
  for (const secret of [...p.issuedTokens, CODE_1, CODE_2, 'client-secret']) expect(text).not.toContain(secret);
}

async function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('oauth-sidecar login (authorization code)', () => {
  it('Collaborate: authorize.action URL, code without state, exchange with body credentials, generation 1 then 2', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));

    const first = await login(config, 'collaborate', () => ({ code: CODE_1 }));
    const { authorizeUrl } = first.visit;
    expect(authorizeUrl.origin + authorizeUrl.pathname).toBe(`${p.origin}/acme/authorize.action`);
    expect(authorizeUrl.searchParams.get('response_type')).toBe('code');
    expect(authorizeUrl.searchParams.get('client_id')).toBe('client-id');
    const redirectUri = authorizeUrl.searchParams.get('redirect_uri') ?? '';
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const line = await first.result;
    expect(first.visit.page.status).toBe(200);
    expect(first.visit.page.body).toContain('Login succeeded');

    const record = storedRecord(storePath, 'collaborate');
    expect(record).toMatchObject({ generation: 1, source: 'authorization_code', writer: 'login-command' });
    expect(p.issuedTokens).toContain(record?.accessToken);
    expect(p.issuedTokens).toContain(record?.refreshToken);

    expect(p.tokenRequests).toHaveLength(1);
    expect(p.tokenRequests[0]?.headers.authorization).toBeUndefined();
    expect(form(p.tokenRequests[0])).toEqual({
      grant_type: 'authorization_code',
      code: CODE_1,
      redirect_uri: redirectUri,
      code_verifier: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      client_id: 'client-id',
      client_secret: 'client-secret',
    });
    // PKCE (RFC 7636): the verifier sent with the code is the one whose S256 challenge the authorize URL carried.
    expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(s256(form(p.tokenRequests[0]).code_verifier ?? '')).toBe(authorizeUrl.searchParams.get('code_challenge'));

    expect(line).toBe(
      `logged in collaborate: generation 1, access token ${fingerprint(record?.accessToken as string)}, refresh token ${fingerprint(record?.refreshToken as string)} (file ${storePath})`,
    );
    expectNoSecrets(first.terminal.text + line + first.visit.page.body, p);

    // The record is live now: only --force replaces it.
    const second = await login(config, 'collaborate', () => ({ code: CODE_2 }), { force: true });
    expect(await second.result).toContain('generation 2');
    expect(storedRecord(storePath, 'collaborate')).toMatchObject({ generation: 2, source: 'authorization_code' });
    expect(storedRecord(storePath, 'collaborate')?.accessToken).not.toBe(record?.accessToken);
  });

  it('v3: /v3/authorize URL with state and scope, state echoed, exchange with X-IBM headers, generation 1 then 2', async () => {
    const p = await provider({ kind: 'v3' });
    const { config, storePath } = workspace(v3Block(p));

    const echoState = (url: URL, code: string) => ({ code, state: url.searchParams.get('state') ?? '' });
    const first = await login(config, 'v3', (url) => echoState(url, CODE_1));
    const { authorizeUrl } = first.visit;
    expect(authorizeUrl.origin + authorizeUrl.pathname).toBe(`${p.origin}/v3/authorize`);
    expect(Object.fromEntries(authorizeUrl.searchParams)).toEqual({
      response_type: 'code',
      client_id: 'client-id',
      redirect_uri: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/callback$/),
      state: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
      scope: 'ACCOUNTS_BASIC',
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
    });
    const line = await first.result;
    expect(first.visit.page.status).toBe(200);
    expect(storedRecord(storePath, 'v3')).toMatchObject({ generation: 1, source: 'authorization_code' });

    const request = p.tokenRequests[0];
    expect(request?.headers['x-ibm-client-id']).toBe('client-id');
    expect(request?.headers['x-ibm-client-secret']).toBe('client-secret');
    expect(form(request)).toEqual({
      grant_type: 'authorization_code',
      code: CODE_1,
      redirect_uri: authorizeUrl.searchParams.get('redirect_uri'),
      code_verifier: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      scope: 'ACCOUNTS_BASIC',
    });
    expect(s256(form(request).code_verifier ?? '')).toBe(authorizeUrl.searchParams.get('code_challenge'));
    expect(line).toMatch(/^logged in v3: generation 1, access token [0-9a-f]{8}, refresh token [0-9a-f]{8} \(file /);
    expectNoSecrets(first.terminal.text + line + first.visit.page.body, p);

    const second = await login(config, 'v3', (url) => echoState(url, CODE_2), { force: true });
    await second.result;
    expect(second.visit.authorizeUrl.searchParams.get('state')).not.toBe(authorizeUrl.searchParams.get('state'));
    // A fresh verifier per login.
    expect(second.visit.authorizeUrl.searchParams.get('code_challenge')).not.toBe(authorizeUrl.searchParams.get('code_challenge'));
    expect(storedRecord(storePath, 'v3')).toMatchObject({ generation: 2 });
  });

  it('ignores forged redirects (a wrong state, none where the provider echoes it, no code) with a 400 and completes with the real one', async () => {
    const p = await provider({ kind: 'v3' });
    const { config, storePath } = workspace(v3Block(p));
    const started = await startLogin(config, 'v3');
    const state = started.authorizeUrl.searchParams.get('state') ?? '';

    const forged: Record<string, string>[] = [
      { code: CODE_2, state: 'forged-state' },
      { code: CODE_2 },
      { error: 'access_denied', state: 'forged-state' },
      { state },
    ];
    for (const query of forged) {
      const page = await started.callback(query);
      expect(page.status).toBe(400);
      expect(page.body).toContain('it was ignored');
    }
    expect((await fetch(new URL('/favicon.ico', started.callbackUrl))).status).toBe(404);
    expect(p.counters.tokenCalls).toBe(0);
    expect(storedRecord(storePath, 'v3')).toBeUndefined();

    const real = await started.callback({ code: CODE_1, state });
    expect(real.status).toBe(200);
    expect(await started.result).toMatch(/^logged in v3: generation 1, /);
    expect(p.counters.tokenCalls).toBe(1);
    expect(form(p.tokenRequests[0]).code).toBe(CODE_1);
    expect(storedRecord(storePath, 'v3')).toMatchObject({ generation: 1, source: 'authorization_code' });
    expect(started.terminal.text).toContain('Ignored a request to the callback: its state does not match this login (possible forgery)');
    expect(started.terminal.text).toContain('Ignored a request to the callback: it carries no state, but this provider always returns it');
  });

  it('Collaborate: a wrong state is ignored too; its real redirect, which carries no state, completes the login', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    const started = await startLogin(config, 'collaborate');
    const forged = await started.callback({ code: CODE_2, state: 'forged-state' });
    expect(forged.status).toBe(400);
    expect(p.counters.tokenCalls).toBe(0);
    expect((await started.callback({ code: CODE_1 })).status).toBe(200);
    expect(await started.result).toContain('generation 1');
    expect(form(p.tokenRequests[0]).code).toBe(CODE_1);
    expect(storedRecord(storePath, 'collaborate')).toMatchObject({ generation: 1 });
  });

  it('times out naming the ignored redirects when only forged ones came; nothing is exchanged or stored', async () => {
    const p = await provider({ kind: 'v3' });
    const { config, storePath } = workspace(v3Block(p));
    const started = await startLogin(config, 'v3', { timeoutMs: 1000 });
    expect((await started.callback({ code: CODE_1, state: 'forged-state' })).status).toBe(400);
    await expect(started.result).rejects.toThrow(
      'no redirect arrived within 1 s (ignored 1 request to the callback, the last because its state does not match this login (possible forgery)); nothing was stored',
    );
    expect(p.counters.tokenCalls).toBe(0);
    expect(storedRecord(storePath, 'v3')).toBeUndefined();
  });

  it('reports an error=access_denied redirect with the provider’s error, and stores nothing', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    const attempt = await login(config, 'collaborate', () => ({ error: 'access_denied', error_description: 'The user denied <access>' }));
    await expect(attempt.result).rejects.toThrow('the provider refused the authorization: access_denied (The user denied <access>)');
    expect(attempt.visit.page.status).toBe(400);
    expect(attempt.visit.page.body).toContain('access_denied (The user denied &#60;access&#62;)');
    expect(p.counters.tokenCalls).toBe(0);
    expect(storedRecord(storePath, 'collaborate')).toBeUndefined();
  });

  it('times out cleanly when no redirect comes, and closes the callback port', async () => {
    const p = await provider({ kind: 'v3' });
    const { config, storePath } = workspace(v3Block(p));
    const terminal = new Terminal();
    const result = runLogin(config, { upstream: 'v3', out: terminal, timeoutMs: 300 });
    result.catch(() => undefined);
    const [, port] = await terminal.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
    expect(await portIsClosed(Number(port))).toBe(false);
    await expect(result).rejects.toThrow('no redirect arrived within 0.3 s; nothing was stored, run login again');
    expect(await portIsClosed(Number(port))).toBe(true);
    expect(storedRecord(storePath, 'v3')).toBeUndefined();
  });

  it('writes generation+1 of the record a running proxy stored while the code was being exchanged', async () => {
    const p = await provider({ kind: 'collaborate', tokenDelayMs: 300 });
    const { config, storePath } = workspace(collaborateBlock(p));
    const proxyStore = await createFileStore(storePath);
    onTestFinished(() => proxyStore.close());
    const terminal = new Terminal();
    const result = runLogin(config, { upstream: 'collaborate', out: terminal });
    result.catch(() => undefined);
    const [printed = ''] = await terminal.waitFor(/http:\/\/\S+authorize\S*/);
    const callback = new URL(new URL(printed).searchParams.get('redirect_uri') ?? '');
    callback.searchParams.set('code', CODE_1);
    // The browser's page is answered after the exchange, so do not wait for it here.
    const page = fetch(callback).then((response) => response.status);
    while (p.counters.tokenCalls === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const seeded = {
      generation: 1,
      refreshToken: 'rt-written-meanwhile',
      obtainedAt: Date.now(),
      source: 'seed',
      writer: 'replica-a',
      seedFingerprint: 'abcd1234',
    } as const;
    expect(await proxyStore.compareAndSet('collaborate', 0, seeded)).toBe('applied');
    expect(await result).toContain('generation 2');
    expect(await page).toBe(200);
    expect(storedRecord(storePath, 'collaborate')).toMatchObject({
      generation: 2,
      source: 'authorization_code',
      seedFingerprint: 'abcd1234',
    });
  });

  it('a code is single-use: reusing it fails at the token endpoint and leaves the stored record alone', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    await (
      await login(config, 'collaborate', () => ({ code: CODE_1 }))
    ).result;
    const before = storedRecord(storePath, 'collaborate');

    const reuse = await login(config, 'collaborate', () => ({ code: CODE_1 }), { force: true });
    const error = (await reuse.result.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/token endpoint of collaborate refused the authorization code: .*invalid_grant/);
    expect(error.message).not.toContain(CODE_1);
    expect(reuse.visit.page.status).toBe(502);
    expect(reuse.visit.page.body).toContain('Login failed');
    expect(p.counters.invalidGrants).toBe(1);
    expect(storedRecord(storePath, 'collaborate')).toEqual(before);
  });
});

describe('oauth-sidecar login (other presets and refusals)', () => {
  it('Apiax logs in with the password grant and stores the pair', async () => {
    const p = await provider({ kind: 'apiax' });
    const { config, storePath } = workspace(`  apiax:
    target: ${p.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${p.tokenUrl}, username: user, password: pass }
`);
    const terminal = new Terminal();
    const line = await runLogin(config, { upstream: 'apiax', out: terminal });
    expect(line).toMatch(/^logged in apiax: generation 1, access token [0-9a-f]{8}, refresh token [0-9a-f]{8}/);
    expect(storedRecord(storePath, 'apiax')).toMatchObject({ generation: 1, source: 'password' });
    expect(form(p.tokenRequests[0])).toEqual({ grant_type: 'password', username: 'user', password: 'pass', client_id: 'integration-api' });
    expectNoSecrets(terminal.text + line, p);
    expect(terminal.text + line).not.toContain('pass');
  });

  it('Apiax with auth.authorizeUrl logs in through the browser as a public client: its own query kept, state checked', async () => {
    const p = await provider({ kind: 'apiax' });
    const authorize = `${p.origin}/realms/acme/protocol/openid-connect/auth?kc_idp_hint=corporate`;
    const { config, storePath } = workspace(`  apiax:
    target: ${p.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${p.tokenUrl}, authorizeUrl: "${authorize}", scope: openid }
`);
    const visit = await login(config, 'apiax', (url) => ({ code: CODE_1, state: url.searchParams.get('state') ?? '' }));
    const { authorizeUrl } = visit.visit;
    expect(authorizeUrl.origin + authorizeUrl.pathname).toBe(`${p.origin}/realms/acme/protocol/openid-connect/auth`);
    expect(Object.fromEntries(authorizeUrl.searchParams)).toEqual({
      kc_idp_hint: 'corporate',
      response_type: 'code',
      client_id: 'integration-api',
      redirect_uri: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/callback$/),
      state: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
      scope: 'openid',
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
    });
    expect(await visit.result).toMatch(/^logged in apiax: generation 1, /);
    expect(storedRecord(storePath, 'apiax')).toMatchObject({ generation: 1, source: 'authorization_code' });
    expect(form(p.tokenRequests[0])).toEqual({
      grant_type: 'authorization_code',
      code: CODE_1,
      redirect_uri: authorizeUrl.searchParams.get('redirect_uri'),
      code_verifier: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      client_id: 'integration-api',
      scope: 'openid',
    });
    expect(s256(form(p.tokenRequests[0]).code_verifier ?? '')).toBe(authorizeUrl.searchParams.get('code_challenge'));

    // Keycloak echoes state: a redirect without it is ignored, and nothing is exchanged.
    const calls = p.counters.tokenCalls;
    const stateless = await login(config, 'apiax', () => ({ code: CODE_2 }), { force: true, timeoutMs: 1000 });
    expect(stateless.visit.page.status).toBe(400);
    await expect(stateless.result).rejects.toThrow(/no redirect arrived .* it carries no state, but this provider always returns it/);
    expect(p.counters.tokenCalls).toBe(calls);
  });

  it('Apiax without username/password explains that login needs the password grant', async () => {
    const p = await provider({ kind: 'apiax' });
    const { config } = workspace(`  apiax:
    target: ${p.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${p.tokenUrl} }
`);
    await expect(runLogin(config, { upstream: 'apiax', out: new Terminal() })).rejects.toThrow(
      /no browser login.*password grant.*auth\.username and auth\.password.*oauth-sidecar seed apiax/,
    );
    expect(p.counters.tokenCalls).toBe(0);
  });

  it('refuses the memory store, unknown upstreams, and a callback listener off loopback', async () => {
    const p = await provider({ kind: 'collaborate' });
    const memory = workspace(collaborateBlock(p), '{ type: memory }').config;
    // timeoutMs: should a check go missing, the login gives up quickly with a different message.
    const quick = { out: new Terminal(), timeoutMs: 500 };
    await expect(runLogin(memory, { upstream: 'collaborate', ...quick })).rejects.toThrow('memory store');
    const { config } = workspace(collaborateBlock(p));
    await expect(runLogin(config, { upstream: 'nope', ...quick })).rejects.toThrow('no upstream named "nope"');
    await expect(runLogin(config, { upstream: 'collaborate', ...quick, listen: '0.0.0.0:0' })).rejects.toThrow('loopback only');
  });
});

/** A generic oauth2 upstream whose browser login goes to `authorizeUrl`; `extra` is more keys of its auth map. */
function oidcBlock(tokenUrl: string, extra = ''): string {
  return `  oidc:
    target: http://127.0.0.1:9
    auth: { preset: oauth2, tokenUrl: "${tokenUrl}", authorizeUrl: "http://127.0.0.1:9/authorize", clientId: oidc-client, clientSecret: client-secret${extra} }
`;
}

function oidcAuth(extra: string): AuthConfig {
  const upstream = workspace(oidcBlock('http://127.0.0.1:9/token', extra)).config.upstreams[0];
  if (!upstream) throw new Error('no upstream parsed');
  return upstream.auth;
}

/** A token endpoint that answers every grant with an access token and no refresh token, as an OIDC provider does without offline_access. */
async function tokenEndpointWithoutRefreshToken(): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'at-without-refresh-Wq3x', token_type: 'Bearer', expires_in: 3600 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, calls: () => calls };
}

describe('oauth-sidecar login (OpenID Connect: prompt, authorizeParams, refresh token)', () => {
  const pkce = { challenge: 'c'.repeat(43), method: 'S256' as const };
  const params = (auth: AuthConfig): Record<string, string> =>
    Object.fromEntries(new URL(buildAuthorizeUrl(auth, 'http://127.0.0.1:8/callback', 'the-state', pkce)).searchParams);

  it('sends prompt=consent when the scope asks for offline_access, and only then; an explicit prompt replaces it', () => {
    expect(params(oidcAuth(', scope: "openid offline_access"'))).toMatchObject({ scope: 'openid offline_access', prompt: 'consent' });
    expect(params(oidcAuth(', scope: openid'))).not.toHaveProperty('prompt');
    expect(params(oidcAuth(''))).not.toHaveProperty('prompt');
    // offline_access must be a scope of its own, not part of another one's name.
    expect(params(oidcAuth(', scope: "openid offline_access_read"'))).not.toHaveProperty('prompt');
    expect(params(oidcAuth(', scope: "openid offline_access", authorizeParams: { prompt: "login consent" }'))).toMatchObject({
      prompt: 'login consent',
    });
    const ownQuery = oidcAuth(', scope: "openid offline_access"');
    expect(params({ ...ownQuery, authorizeUrl: 'http://127.0.0.1:9/auth?prompt=select_account' })).toMatchObject({
      prompt: 'select_account',
    });
  });

  it('adds auth.authorizeParams to the authorize URL beside the parameters login sets', () => {
    expect(params(oidcAuth(', scope: openid, authorizeParams: { acr_values: "urn:mfa", ui_locales: de }'))).toEqual({
      acr_values: 'urn:mfa',
      ui_locales: 'de',
      response_type: 'code',
      client_id: 'oidc-client',
      redirect_uri: 'http://127.0.0.1:8/callback',
      state: 'the-state',
      scope: 'openid',
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
    });
  });

  it('refuses auth.authorizeParams that would replace a parameter login sets, naming each, when the config loads', () => {
    const error = (() => {
      try {
        workspace(
          oidcBlock(
            'http://127.0.0.1:9/token',
            ', authorizeParams: { redirect_uri: "http://attacker.example/cb", state: fixed, nonce: n1 }',
          ),
        );
      } catch (caught) {
        return caught;
      }
      throw new Error('the config was accepted');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'upstreams.oidc.auth.authorizeParams.redirect_uri: login sets redirect_uri itself; remove it',
      'upstreams.oidc.auth.authorizeParams.state: login sets state itself; remove it',
    ]);
  });

  it('refuses an answer without a refresh token: nothing is stored, the browser sees a failure, the message says what to do', async () => {
    const endpoint = await tokenEndpointWithoutRefreshToken();
    const { config, storePath } = workspace(oidcBlock(endpoint.url, ', scope: openid'));
    const attempt = await login(config, 'oidc', (url) => ({ code: CODE_1, state: url.searchParams.get('state') ?? '' }));
    const error = (await attempt.result.catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(
      'the token endpoint of oidc issued an access token but no refresh token, so the proxy could not renew it; nothing was stored. ' +
        'For an OpenID Connect provider put offline_access into auth.scope (login then asks with prompt=consent); ' +
        'check that the client is allowed the refresh_token grant',
    );
    expect(endpoint.calls()).toBe(1);
    expect(attempt.visit.page.status).toBe(502);
    expect(storedRecord(storePath, 'oidc')).toBeUndefined();
  });

  it('stores an answer without a refresh token when the password grant can get the next one (auth.username and auth.password)', async () => {
    const endpoint = await tokenEndpointWithoutRefreshToken();
    const { config, storePath } = workspace(`  pw:
    target: http://127.0.0.1:9
    auth: { preset: oauth2, tokenUrl: "${endpoint.url}", clientId: c, clientSecret: s, username: user, password: pass }
`);
    expect(await runLogin(config, { upstream: 'pw', out: new Terminal() })).toMatch(
      /^logged in pw: generation 1, .*refresh token \(none\)/,
    );
    expect(storedRecord(storePath, 'pw')).toMatchObject({ generation: 1, source: 'password', accessToken: 'at-without-refresh-Wq3x' });
    expect(storedRecord(storePath, 'pw')).not.toHaveProperty('refreshToken');
  });
});

describe('oauth-sidecar login (a live record is replaced only with --force)', () => {
  const liveRecord = {
    generation: 1,
    accessToken: 'at-live-Hs72',
    accessTokenExpiresAt: Date.now() + 3_600_000,
    refreshToken: 'rt-live-Kd93',
    obtainedAt: Date.now(),
    source: 'seed',
    writer: 'replica-a',
  } as const;

  async function storeRecord(storePath: string, upstream: string, record: TokenRecord): Promise<void> {
    const store = await createFileStore(storePath);
    try {
      expect(await store.compareAndSet(upstream, 0, record)).toBe('applied');
    } finally {
      await store.close();
    }
  }

  it('refuses before the browser step (no authorize URL, no listener, no token call) and leaves the record alone', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    await storeRecord(storePath, 'collaborate', liveRecord);
    const terminal = new Terminal();
    const error = (await runLogin(config, { upstream: 'collaborate', out: terminal, timeoutMs: 500 }).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: 'RECORD_LIVE' });
    expect(error.message).toBe('upstream collaborate already has a live record (generation 1); use --force to replace it');
    expect(terminal.text).toBe('');
    expect(p.counters.tokenCalls).toBe(0);
    expect(storedRecord(storePath, 'collaborate')).toEqual(liveRecord);
  });

  it('with --force the login replaces it as the next generation', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    await storeRecord(storePath, 'collaborate', liveRecord);
    const forced = await login(config, 'collaborate', () => ({ code: CODE_1 }), { force: true });
    expect(await forced.result).toContain('generation 2');
    expect(storedRecord(storePath, 'collaborate')).toMatchObject({ generation: 2, source: 'authorization_code', writer: 'login-command' });
  });

  it('replaces a dead record without --force (reviving it is what login is for)', async () => {
    const p = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(collaborateBlock(p));
    await storeRecord(storePath, 'collaborate', { ...liveRecord, dead: { at: Date.now(), reason: 'invalid_grant' } });
    const revived = await login(config, 'collaborate', () => ({ code: CODE_1 }));
    expect(await revived.result).toContain('generation 2');
  });

  it('the password grant is held to the same rule', async () => {
    const p = await provider({ kind: 'apiax' });
    const { config, storePath } = workspace(`  apiax:
    target: ${p.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${p.tokenUrl}, username: user, password: pass }
`);
    await storeRecord(storePath, 'apiax', liveRecord);
    await expect(runLogin(config, { upstream: 'apiax', out: new Terminal() })).rejects.toThrow('already has a live record');
    expect(p.counters.tokenCalls).toBe(0);
    expect(await runLogin(config, { upstream: 'apiax', out: new Terminal(), force: true })).toContain('generation 2');
  });
});
