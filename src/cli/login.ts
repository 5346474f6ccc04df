/**
 * `oauth-sidecar login UPSTREAM`: the first token for providers without a client-credentials grant.
 * A person authorizes once in a browser (RFC 6749 §4.1); a one-shot listener on loopback receives the
 * redirect, the code is exchanged at the token endpoint, and the pair is written to the configured store
 * as generation + 1. Presets with a password grant (Apiax) run that grant instead. Only fingerprints
 * are printed: the code and the tokens never reach the terminal, the browser page or an error message.
 * A live record is replaced only with --force (checked before the browser step); an answer without a
 * refresh token is refused, since the proxy could not renew what it stores.
 */
import { createPkce, type Pkce } from './pkce.js';
import { isLoopback } from '../net/is-loopback.js';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { parseEndpoint } from '../net/endpoint.js';
import type { AuthConfig, Config, UpstreamConfig } from '../config/types.js';
import { CommandError } from '../errors.js';
import { createStore } from '../store/create-store.js';
import { refuseClientCredentialsUpstream, refuseLiveRecord } from './existing-record.js';
import { buildAuthorizeUrl } from './authorize-url.js';
import { listenForCallback, page, waitForCallback } from './login-callback.js';
import type { TokenStore } from '../store/token-store.js';
import { fingerprint } from '../tokens/fingerprint.js';
import { createOAuth2Client, type TokenGrant } from '../tokens/providers/oauth2-client.js';
import type { TokenResponse } from '../tokens/providers/parse-token-response.js';
import { nextRecord } from '../tokens/token-record.js';

export interface LoginOptions {
  upstream: string;
  /** host:port of the callback listener; loopback only. Default 127.0.0.1:0 (a free port). */
  listen?: string;
  /** The redirect_uri registered with the provider; default http://{listen}/callback. */
  redirectUri?: string;
  /** How long to wait for the browser's redirect. Default 300000 (5 min). */
  timeoutMs?: number;
  /** Opening a browser is not implemented: the URL is always printed for the operator to open. */
  openBrowser?: false;
  /** Replace a live record (one that still holds usable tokens). */
  force?: boolean;
  /** Prompts and progress for the operator. */
  out: NodeJS.WritableStream;
}

const DEFAULT_TIMEOUT_MS = 300_000;
const WRITER = 'login-command';

/** Returns the line to print; throws a CommandError (or the store's StoreError) with a message for the operator. */
export async function runLogin(config: Config, options: LoginOptions): Promise<string> {
  const upstream = config.upstreams.find((candidate) => candidate.name === options.upstream);
  if (!upstream) {
    throw new CommandError(
      'UNKNOWN_UPSTREAM',
      `no upstream named "${options.upstream}" in ${config.source} (upstreams: ${config.upstreams.map((u) => u.name).join(', ')})`,
    );
  }
  refuseClientCredentialsUpstream(upstream, 'login');
  if (config.store.type === 'memory')
    throw new CommandError(
      'STORE_OUT_OF_REACH',
      'the memory store lives inside the proxy process; a login from outside has no effect (configure a file or redis store)',
    );
  const { auth } = upstream;
  if (!hasBrowserLogin(auth)) return passwordLogin(config, upstream, options);
  // A public client (apiax's integration-api, clientAuth none) has no secret to send.
  const needsSecret = auth.clientAuth !== 'none';
  const missing = [auth.clientId ? undefined : 'clientId', auth.clientSecret || !needsSecret ? undefined : 'clientSecret'].filter(Boolean);
  if (missing.length > 0)
    throw new CommandError(
      'LOGIN_NOT_CONFIGURED',
      `upstream ${upstream.name} has no ${missing.join(' and ')} configured; login needs the client credentials`,
    );

  const store = await createStore(config.store);
  try {
    // Before the browser step: an operator should not authorize only to be told the record was live.
    refuseLiveRecord(upstream.name, await store.read(upstream.name), options.force ?? false);
    return await browserLogin(upstream, store, options);
  } finally {
    await store.close();
  }
}

/** RFC 6749 §4.1: authorize in the browser, receive the code on loopback, exchange it, store the pair. */
async function browserLogin(upstream: UpstreamConfig, store: TokenStore, options: LoginOptions): Promise<string> {
  const callback = await openCallback(upstream, options);
  try {
    const code = await callback.code;
    try {
      const line = await exchangeAndStore(upstream, store, {
        type: 'authorization_code',
        code,
        redirectUri: callback.redirectUri,
        codeVerifier: callback.pkce.verifier,
      });
      callback.reply(200, 'Login succeeded. You can close this window and return to the terminal.');
      return line;
    } catch (error) {
      callback.reply(502, 'Login failed: the authorization could not be turned into tokens. The terminal says why.');
      throw error;
    }
  } finally {
    await callback.close();
  }
}

/** Collaborate and v3 have an authorize URL derived from tokenUrl; any preset has one when auth.authorizeUrl is set. */
function hasBrowserLogin(auth: AuthConfig): boolean {
  return auth.authorizeUrl !== undefined || auth.preset === 'collaborate' || auth.preset === 'v3';
}

/** Apiax (and generic OAuth2) without auth.authorizeUrl: their first token comes from the password grant. */
async function passwordLogin(config: Config, upstream: UpstreamConfig, options: LoginOptions): Promise<string> {
  const { auth } = upstream;
  if (!auth.username || !auth.password) {
    throw new CommandError(
      'LOGIN_NOT_CONFIGURED',
      `upstream ${upstream.name} (preset ${auth.preset}) has no browser login: its authorize URL cannot be derived from the token URL (set auth.authorizeUrl for one). ` +
        'Without it login uses the password grant: configure auth.username and auth.password (or auth.passwordFile), ' +
        `or put a refresh token into the store with \`oauth-sidecar seed ${upstream.name}\``,
    );
  }
  const store = await createStore(config.store);
  try {
    refuseLiveRecord(upstream.name, await store.read(upstream.name), options.force ?? false);
    return await exchangeAndStore(upstream, store, { type: 'password', username: auth.username, password: auth.password.reveal() });
  } finally {
    await store.close();
  }
}

async function exchangeAndStore(upstream: UpstreamConfig, store: TokenStore, grant: TokenGrant): Promise<string> {
  const client = createOAuth2Client(upstream.auth);
  let tokens: TokenResponse;
  const sentAt = Date.now();
  try {
    tokens = await client.requestToken(grant);
  } catch (error) {
    // TokenEndpointError messages carry the provider's error code but never the code or a secret.
    throw new CommandError(
      'LOGIN_GRANT_REFUSED',
      `the token endpoint of ${upstream.name} refused the ${grant.type.replace('_', ' ')}: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await client.close();
  }
  refuseAnswerWithoutRefreshToken(upstream, tokens);
  // A running proxy may write between our read and our write: re-read and try once more.
  for (let attempt = 0; attempt < 2; attempt++) {
    const current = await store.read(upstream.name);
    const next = nextRecord(current, tokens, grant, sentAt, WRITER);
    if ((await store.compareAndSet(upstream.name, current?.generation ?? 0, next)) === 'applied') {
      return (
        `logged in ${upstream.name}: generation ${next.generation}, access token ${fingerprint(next.accessToken)}` +
        `, refresh token ${fingerprint(next.refreshToken) ?? '(none)'} (${store.description})`
      );
    }
  }
  throw new CommandError(
    'RECORD_CHANGED',
    `the record of ${upstream.name} kept changing while logging in; the new tokens were not stored, run login again`,
  );
}

/**
 * Every preset's provider issues a refresh token with the first pair (docs/providers.md), and the generic
 * oauth2 preset gets no exception: RFC 6749 makes the refresh token optional, but a pair without one gives
 * the proxy an access token it cannot renew, so the upstream would stop working when it expires, hours
 * after a login that looked fine. The one way back the proxy has without a refresh token is the password
 * grant (refresh-procedure.ts grantsFor), so with auth.username and auth.password such an answer is stored.
 */
function refuseAnswerWithoutRefreshToken(upstream: UpstreamConfig, tokens: TokenResponse): void {
  if (tokens.refreshToken || (upstream.auth.username && upstream.auth.password)) return;
  throw new CommandError(
    'LOGIN_NO_REFRESH_TOKEN',
    `the token endpoint of ${upstream.name} issued an access token but no refresh token, so the proxy could not renew it; ` +
      'nothing was stored. For an OpenID Connect provider put offline_access into auth.scope (login then asks with prompt=consent); ' +
      'check that the client is allowed the refresh_token grant',
  );
}

interface Callback {
  readonly redirectUri: string;
  /** The code of the first redirect; rejects when it was refused or none came in time. */
  readonly code: Promise<string>;
  /** This login's PKCE pair: the challenge went out in the authorize URL, the verifier goes with the code. */
  readonly pkce: Pkce;
  /** Answers the browser's pending redirect request (once the code has been exchanged). */
  reply(status: number, message: string): void;
  close(): Promise<void>;
}

/** Starts the one-shot callback listener and prints the authorize URL. */
async function openCallback(upstream: UpstreamConfig, options: LoginOptions): Promise<Callback> {
  const endpoint = parseEndpoint(options.listen ?? '127.0.0.1:0');
  if (!isLoopback(endpoint.host))
    throw new CommandError('LOGIN_SETUP_FAILED', `the login callback listens on loopback only; ${endpoint.host} is not a loopback address`);
  const state = randomBytes(24).toString('base64url');
  const pkce = createPkce();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const server = createServer();
  await listenForCallback(server, endpoint);
  let flushed: Promise<unknown> = Promise.resolve();
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Let the last page reach the browser, then drop every connection (keep-alive ones too).
    await Promise.race([flushed, delay(1000, undefined, { ref: false })]);
    server.closeAllConnections();
    await closed;
  };
  try {
    const port = (server.address() as AddressInfo).port;
    const hostPort = `${isIP(endpoint.host) === 6 ? `[${endpoint.host}]` : endpoint.host}:${port}`;
    const redirectUri = options.redirectUri ?? `http://${hostPort}/callback`;
    if (!URL.canParse(redirectUri)) throw new CommandError('LOGIN_SETUP_FAILED', `the redirect URI ${redirectUri} is not a URL`);
    const authorizeUrl = buildAuthorizeUrl(upstream.auth, redirectUri, state, pkce);
    let pending: ServerResponse | undefined;
    const code = waitForCallback(server, {
      path: new URL(redirectUri).pathname,
      state,
      // Collaborate does not echo state (docs/providers.md); the others do (RFC 6749 §4.1.2), so a missing state
      // there is an attack or a bug.
      stateRequired: upstream.auth.preset !== 'collaborate',
      timeoutMs,
      hold: (res) => (pending = res),
      ignored: (reason) => options.out.write(`Ignored a request to the callback: ${reason}. Still waiting...\n`),
    });
    options.out.write(
      `Open this URL in a browser and authorize ${upstream.name}:\n\n  ${authorizeUrl}\n\n` +
        `Waiting for the redirect to ${redirectUri} (listening on ${hostPort}, gives up after ${timeoutMs / 1000} s)...\n`,
    );
    const reply = (status: number, message: string): void => {
      if (pending) {
        flushed = once(pending, 'close');
        page(pending, status, message);
      }
      pending = undefined;
    };
    return { redirectUri, code, pkce, reply, close };
  } catch (error) {
    await close();
    throw error;
  }
}
