import { s256 } from '../../src/cli/pkce.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runLogin, type LoginOptions } from '../../src/cli/login.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { createFileStore } from '../../src/store/file-store.js';
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
  const terminal = new Terminal();
  const result = runLogin(config, { upstream, out: terminal, ...options });
  result.catch(() => undefined); // awaited by the test; this only keeps an early rejection from going unhandled
  const [printed] = await Promise.race([
    terminal.waitFor(/https?:\/\/\S+(?:authorize|openid-connect\/auth)\S*/),
    result.then(() => [] as string[]),
  ]);
  const authorizeUrl = new URL(printed ?? 'http://missing.invalid');
  const callback = new URL(authorizeUrl.searchParams.get('redirect_uri') ?? 'http://missing.invalid');
  for (const [key, value] of Object.entries(query(authorizeUrl))) callback.searchParams.set(key, value);
  const response = await fetch(callback);
  return { result, visit: { authorizeUrl, page: { status: response.status, body: await response.text() } }, terminal };
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

    const second = await login(config, 'collaborate', () => ({ code: CODE_2 }));
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

    const second = await login(config, 'v3', (url) => echoState(url, CODE_2));
    await second.result;
    expect(second.visit.authorizeUrl.searchParams.get('state')).not.toBe(authorizeUrl.searchParams.get('state'));
    // A fresh verifier per login.
    expect(second.visit.authorizeUrl.searchParams.get('code_challenge')).not.toBe(authorizeUrl.searchParams.get('code_challenge'));
    expect(storedRecord(storePath, 'v3')).toMatchObject({ generation: 2 });
  });

  it('rejects a wrong state (v3 and Collaborate) and a missing one where the provider echoes it (v3); nothing is exchanged or stored', async () => {
    const v3 = await provider({ kind: 'v3' });
    const collaborate = await provider({ kind: 'collaborate' });
    const { config, storePath } = workspace(v3Block(v3) + collaborateBlock(collaborate));

    const cases: [string, Record<string, string>][] = [
      ['v3', { code: CODE_1, state: 'forged-state' }],
      ['v3', { code: CODE_1 }],
      ['collaborate', { code: CODE_1, state: 'forged-state' }],
    ];
    for (const [upstream, query] of cases) {
      const attempt = await login(config, upstream, () => query);
      await expect(attempt.result).rejects.toThrow(/state.*possible forgery/);
      expect(attempt.visit.page.status).toBe(400);
      expect(attempt.visit.page.body).toContain('Nothing was stored');
    }
    expect(v3.counters.tokenCalls + collaborate.counters.tokenCalls).toBe(0);
    expect(storedRecord(storePath, 'v3')).toBeUndefined();
    expect(storedRecord(storePath, 'collaborate')).toBeUndefined();
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

    const reuse = await login(config, 'collaborate', () => ({ code: CODE_1 }));
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

    // Keycloak echoes state: a redirect without it is refused, and nothing is exchanged.
    const calls = p.counters.tokenCalls;
    const stateless = await login(config, 'apiax', () => ({ code: CODE_2 }));
    await expect(stateless.result).rejects.toThrow(/state/);
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
