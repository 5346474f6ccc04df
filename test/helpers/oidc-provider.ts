/**
 * A real, strict OpenID provider for login tests: panva's oidc-provider (the certified Node implementation)
 * in this process on 127.0.0.1, with one confidential client (client_secret_basic, what the oauth2 preset
 * sends), PKCE required, refresh tokens only for offline_access granted with prompt=consent, rotated on
 * every use, and short-lived access tokens. Its development login and consent pages stand in for the
 * person: `authorizeInBrowser` walks them over HTTP as a browser would (cookies, redirects, forms) and
 * ends at the client's redirect URI. Everything is closed when the test that started it finishes.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Configuration } from 'oidc-provider';
import { onTestFinished } from 'vitest';

export interface OidcProviderOptions {
  /** The one redirect URI registered for the client (exact match, as a strict provider checks it). */
  readonly redirectUri: string;
  /** Access token lifetime in seconds; default 60. */
  readonly accessTokenTtlSeconds?: number;
}

export interface OidcProvider {
  /** e.g. http://127.0.0.1:40123 */
  readonly issuer: string;
  readonly authorizeUrl: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Successful token requests so far, by grant_type. */
  readonly grants: string[];
  /** Failed token requests so far, as "grant_type: error". */
  readonly grantErrors: string[];
  /** Refresh tokens spent by rotation so far. */
  readonly consumedRefreshTokens: () => number;
  /** Whether the provider issued this access token and it is still valid (not expired, not revoked). */
  isValidAccessToken(token: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<OidcProvider> {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  onTestFinished(close);

  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'oauth-sidecar';
  const clientSecret = randomBytes(24).toString('base64url');
  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [options.redirectUri],
      },
    ],
    // v9 requires PKCE of public clients only; this one is confidential, and strict here too.
    pkce: { required: () => true },
    // Every refresh spends the refresh token and returns a new one (the default rotates only late in its life).
    rotateRefreshToken: true,
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 60,
      AuthorizationCode: 60,
      IdToken: 60,
      RefreshToken: 3600,
      Interaction: 300,
      Session: 600,
      Grant: 3600,
    },
    // Any username signs in (the development login page asks for one); the account is just its subject.
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    scopes: ['openid', 'offline_access'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: true } },
  };
  // Imported here, not at the top: the package warns on import when Node is older than it prefers (it runs on 20).
  const { default: Provider } = await quietly(() => import('oidc-provider'));
  const provider = await quietly(() => new Provider(issuer, configuration));

  const grants: string[] = [];
  const grantErrors: string[] = [];
  let consumed = 0;
  provider.on('grant.success', (ctx) => grants.push(String(ctx.oidc.params?.grant_type)));
  provider.on('grant.error', (ctx, error) => grantErrors.push(`${String(ctx.oidc.params?.grant_type)}: ${error.message}`));
  provider.on('refresh_token.consumed', () => consumed++);
  const callback = provider.callback();
  handle = (req, res) => void callback(req, res);

  return {
    issuer,
    authorizeUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    clientId,
    clientSecret,
    grants,
    grantErrors,
    consumedRefreshTokens: () => consumed,
    isValidAccessToken: async (token) => (await provider.AccessToken.find(token)) !== undefined,
    close,
  };
}

/**
 * oidc-provider warns (console.warn) about its development keys and pages, which is what these tests want,
 * and about a Node version older than it prefers; nothing else is silenced.
 */
async function quietly<T>(build: () => T | Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).startsWith('oidc-provider WARNING')) warn(...args);
  };
  try {
    return await build();
  } finally {
    console.warn = warn;
  }
}

export interface BrowserResult {
  /** The last URL the browser was sent to: the client's redirect URI with the provider's answer. */
  readonly redirect: URL;
  /** The page the client's redirect URI answered with. */
  readonly status: number;
  readonly body: string;
  /** The pages the browser passed, by their prompt (login, consent), in order. */
  readonly prompts: string[];
}

/**
 * Plays the person in a browser: opens the authorize URL, follows redirects by hand with a small cookie jar,
 * signs in with any username on the login page, confirms the consent page, and follows the last redirect to
 * the client's redirect URI (anything off the provider's origin), whose answer it returns.
 */
export async function authorizeInBrowser(authorizeUrl: string, username = 'alice'): Promise<BrowserResult> {
  const origin = new URL(authorizeUrl).origin;
  const jar = new Map<string, string>();
  const prompts: string[] = [];
  let next: { url: URL; form?: URLSearchParams } = { url: new URL(authorizeUrl) };
  for (let step = 0; step < 20; step++) {
    const { url, form } = next;
    const headers: Record<string, string> = {};
    if (url.origin === origin && jar.size > 0) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form?.toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
    const body = await response.text();
    if (url.origin !== origin) return { redirect: url, status: response.status, body, prompts };
    for (const cookie of response.headers.getSetCookie()) remember(jar, cookie);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      next = { url: new URL(location, url) };
      continue;
    }
    if (response.status !== 200) throw new Error(`the provider answered ${url.pathname} with ${response.status}: ${body.slice(0, 500)}`);
    const page = readForm(body, url);
    prompts.push(page.fields.get('prompt') ?? '?');
    if (page.fields.get('prompt') === 'login') {
      page.fields.set('login', username);
      page.fields.set('password', 'any password will do');
    }
    next = { url: page.action, form: page.fields };
  }
  throw new Error('the browser went through 20 pages without reaching the redirect URI');
}

/** Set-Cookie into the jar; an expired or emptied cookie leaves it. Paths are ignored: one site, one jar. */
function remember(jar: Map<string, string>, setCookie: string): void {
  const [pair = '', ...attributes] = setCookie.split(';');
  const separator = pair.indexOf('=');
  const name = pair.slice(0, separator).trim();
  const value = pair.slice(separator + 1).trim();
  const expired = attributes.some((attribute) => {
    const [key = '', setting = ''] = attribute.split('=').map((part) => part.trim());
    return (
      (key.toLowerCase() === 'expires' && Date.parse(setting) <= Date.now()) || (key.toLowerCase() === 'max-age' && Number(setting) <= 0)
    );
  });
  if (expired || value === '') jar.delete(name);
  else jar.set(name, value);
}

/** The one form of a development interaction page: where it posts and its hidden fields. */
function readForm(html: string, base: URL): { action: URL; fields: URLSearchParams } {
  const form = /<form[^>]*\saction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
  if (!form) throw new Error(`no form on the page at ${base.pathname}: ${html.slice(0, 500)}`);
  const fields = new URLSearchParams();
  for (const input of (form[2] ?? '').matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"/g)) {
    fields.set(unescapeHtml(input[1] ?? ''), unescapeHtml(input[2] ?? ''));
  }
  return { action: new URL(unescapeHtml(form[1] ?? ''), base), fields };
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|#x27|#x2F);/g, (entity) => HTML_ENTITIES[entity] ?? entity);
}

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
  '&#x27;': "'",
  '&#x2F;': '/',
};
