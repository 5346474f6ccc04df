/**
 * Local stand-ins for the three upstream APIs the sidecar knows (see docs/providers.md), small enough to
 * read in one sitting. Each stand-in is one HTTP server on
 * 127.0.0.1 (port 0 by default) with
 *
 *   - a token endpoint that accepts only `grant_type=refresh_token`, issues an access token with a short
 *     lifetime (`lifetime`, default 20 s) and a new refresh token every time (rotation): the refresh token
 *     it was given is spent, and sending it again is answered 400 `invalid_grant`;
 *   - a resource API answering JSON, which rejects a missing, unknown or expired access token the way the
 *     real provider does.
 *
 * | stand-in    | token endpoint                                         | client credentials                        | expired access token            |
 * |-------------|--------------------------------------------------------|-------------------------------------------|---------------------------------|
 * | collaborate | POST /demo/api/oauth2/token                            | client_id + client_secret in the form body | 403 "Access denied"             |
 * | apiax       | POST /auth/realms/apiax/protocol/openid-connect/token  | public client: client_id=integration-api  | 401 + WWW-Authenticate: Bearer  |
 * | v3          | POST /v3/authorize/token                               | X-IBM-Client-Id / X-IBM-Client-Secret      | 401 envelope error.token.expired |
 *
 * Resource APIs: Collaborate under /demo/api/3/… (e.g. /demo/api/3/sites), Apiax and v3 on any other path.
 *
 * `expireAfter` (seconds, default = `lifetime`) makes access tokens die server-side earlier than the
 * `expires_in` they advertise, as happens when a provider revokes a session or clocks disagree. The proxy
 * refreshes early on its own clock (by half the lifetime at the latest), so with honest lifetimes a
 * rejection is rare; a shorter `expireAfter` shows the other path: rejected upstream, refreshed, replayed.
 *
 * Usage:
 *   import { startStandIns } from './stand-ins.mjs';
 *   const standIns = await startStandIns({ lifetime: 20, expireAfter: 6 });
 *   standIns.collaborate.url;          // http://127.0.0.1:PORT
 *   standIns.collaborate.seed;         // { tokenUrl, target, clientId, clientSecret, refreshToken }
 *   await standIns.close();
 *
 * Plain JavaScript, no dependencies beyond Node.
 */
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { URL, URLSearchParams } from 'node:url';

const newToken = (prefix) => `${prefix}-${randomBytes(12).toString('hex')}`;

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Form or JSON body as a plain object. */
function parseBody(text, contentType = '') {
  if (contentType.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/**
 * The state every stand-in shares: live access tokens (token -> server-side expiry, ms) and refresh
 * tokens (token -> 'live' | 'spent'), plus counters for anyone curious.
 */
function createTokenBook({ lifetime, expireAfter, prefix }) {
  const access = new Map();
  const refresh = new Map();
  const stats = { issued: 0, refreshes: 0, reused: 0, rejected: 0, served: 0 };
  const seed = newToken(`${prefix}-rt`);
  refresh.set(seed, 'live');
  return {
    seed,
    stats,
    /** Spends `refreshToken` and returns a new pair, or a reason for an invalid_grant answer. */
    rotate(refreshToken) {
      const state = refresh.get(refreshToken);
      if (state === undefined) return { error: 'Invalid refresh token' };
      if (state === 'spent') {
        stats.reused += 1;
        return { error: 'Maximum allowed refresh token reuse exceeded' };
      }
      refresh.set(refreshToken, 'spent');
      const accessToken = newToken(`${prefix}-at`);
      const nextRefresh = newToken(`${prefix}-rt`);
      access.set(accessToken, Date.now() + expireAfter * 1000);
      refresh.set(nextRefresh, 'live');
      stats.issued += 1;
      stats.refreshes += 1;
      return { accessToken, refreshToken: nextRefresh, expiresIn: lifetime };
    },
    /** 'ok', 'missing', 'invalid' or 'expired' for the request's bearer token. */
    check(req) {
      const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!match) return 'missing';
      const expiresAt = access.get(match[1]);
      if (expiresAt === undefined) return 'invalid';
      if (Date.now() >= expiresAt) return 'expired';
      return 'ok';
    },
  };
}

/** One HTTP server with a token endpoint and a resource API; `provider` supplies the wire details. */
async function startStandIn(provider, options) {
  const book = createTokenBook({ ...options, prefix: provider.name });
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      if (req.method === 'POST' && url.pathname === provider.tokenPath) {
        const body = parseBody(await readBody(req), req.headers['content-type']);
        const clientProblem = provider.checkClient(req, body);
        if (clientProblem) return sendJson(res, 401, { error: 'invalid_client', error_description: clientProblem });
        if (body.grant_type !== 'refresh_token')
          return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'the demo stand-in only refreshes' });
        const result = book.rotate(String(body.refresh_token ?? ''));
        if (result.error) return sendJson(res, 400, provider.invalidGrant(result.error));
        return sendJson(res, 200, provider.tokenResponse(result));
      }
      const verdict = book.check(req);
      if (verdict !== 'ok') {
        book.stats.rejected += 1;
        return provider.reject(res, verdict);
      }
      book.stats.served += 1;
      return sendJson(res, 200, provider.resource(url.pathname));
    } catch (error) {
      sendJson(res, 500, { error: 'stand_in_error', message: String(error) });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address();
  const url = `http://${address.address}:${address.port}`;
  return {
    name: provider.name,
    url,
    stats: book.stats,
    /** What the proxy's config needs to reach this stand-in. */
    seed: {
      preset: provider.name,
      target: `${url}${provider.targetPath}`,
      tokenUrl: `${url}${provider.tokenPath}`,
      ...provider.credentials,
      refreshToken: book.seed,
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const collaborate = {
  name: 'collaborate',
  tokenPath: '/demo/api/oauth2/token',
  targetPath: '/demo',
  credentials: { clientId: 'demo-collaborate-client', clientSecret: 'demo-collaborate-secret' },
  checkClient: (_req, body) =>
    body.client_id === 'demo-collaborate-client' && body.client_secret === 'demo-collaborate-secret'
      ? undefined
      : 'client_id/client_secret missing from the form body or wrong',
  // Collaborate sends expires_in as a string at times; so does the stand-in.
  tokenResponse: (t) => ({
    access_token: t.accessToken,
    expires_in: String(t.expiresIn),
    refresh_token: t.refreshToken,
    token_type: 'bearer',
    useremail: 'demo@example.com',
  }),
  invalidGrant: (reason) => ({ error: 'invalid_grant', error_description: reason }),
  // An expired token: 403 Access denied, not 401.
  reject: (res) => sendJson(res, 403, { error: 'Access denied' }),
  resource: (path) => ({
    stub: 'collaborate',
    path,
    sites: [
      { id: 1, name: 'Demo site' },
      { id: 2, name: 'Another site' },
    ],
  }),
};

const apiax = {
  name: 'apiax',
  tokenPath: '/auth/realms/apiax/protocol/openid-connect/token',
  targetPath: '',
  credentials: {},
  checkClient: (_req, body) => (body.client_id === 'integration-api' ? undefined : 'expected the public client integration-api'),
  tokenResponse: (t) => ({
    access_token: t.accessToken,
    expires_in: t.expiresIn,
    refresh_expires_in: 0,
    refresh_token: t.refreshToken,
    token_type: 'Bearer',
    'not-before-policy': 0,
    session_state: 'demo-session',
    scope: 'profile email',
  }),
  invalidGrant: (reason) => ({ error: 'invalid_grant', error_description: reason }),
  reject: (res, verdict) =>
    sendJson(
      res,
      401,
      { error: 'invalid_token' },
      {
        'www-authenticate': `Bearer realm="apiax", error="invalid_token", error_description="${verdict === 'expired' ? 'Token is expired' : 'Token is not active'}"`,
      },
    ),
  resource: (path) => ({ stub: 'apiax', path, rules: [{ id: 'R-1', title: 'Cross-border marketing' }] }),
};

const v3 = {
  name: 'v3',
  tokenPath: '/v3/authorize/token',
  targetPath: '',
  credentials: { clientId: 'demo-v3-client', clientSecret: 'demo-v3-secret' },
  checkClient: (req) =>
    req.headers['x-ibm-client-id'] === 'demo-v3-client' && req.headers['x-ibm-client-secret'] === 'demo-v3-secret'
      ? undefined
      : 'X-IBM-Client-Id/X-IBM-Client-Secret headers missing or wrong',
  tokenResponse: (t) => ({ access_token: t.accessToken, expires_in: t.expiresIn, token_type: 'Bearer', refresh_token: t.refreshToken }),
  invalidGrant: (reason) => ({
    group_header: { message_identification: 'demo', http_code: 400 },
    error: 'invalid_grant',
    error_description: reason,
    failures: [{ code: 'error.oauth.code.expired', description: reason }],
  }),
  reject: (res, verdict) =>
    sendJson(res, 401, {
      group_header: { message_identification: newToken('msg'), creation_date_time: new Date().toISOString(), http_code: 401 },
      error: {
        request: { url: '' },
        failures: [{ code: verdict === 'expired' ? 'error.token.expired' : 'error.token.invalid', description: `Token ${verdict}` }],
      },
    }),
  resource: (path) => ({
    group_header: { message_identification: newToken('msg'), http_code: 200 },
    response: { stub: 'v3', path, accounts: [{ _id: 'FI6593857450293470-EUR', currency: 'EUR' }] },
  }),
};

/**
 * Starts all three stand-ins. Options: `lifetime` (advertised access-token lifetime, s, default 20),
 * `expireAfter` (server-side lifetime, s, default = lifetime), `host` (default 127.0.0.1).
 */
export async function startStandIns(options = {}) {
  const lifetime = options.lifetime ?? 20;
  const expireAfter = options.expireAfter ?? lifetime;
  const shared = { lifetime, expireAfter, host: options.host };
  const started = await Promise.all([collaborate, apiax, v3].map((provider) => startStandIn(provider, shared)));
  const [c, a, v] = started;
  return {
    collaborate: c,
    apiax: a,
    v3: v,
    all: started,
    lifetime,
    expireAfter,
    close: () => Promise.all(started.map((standIn) => standIn.close())).then(() => undefined),
  };
}
