/**
 * Child process: the upstream API every target forwards to, plus the fake OAuth token endpoint
 * oauth-sidecar refreshes against. It runs in its own process (pinned to the load core) so it never
 * shares an event loop or a core with the proxy being measured.
 *
 *   GET  /<prefix>/...   200 + a fixed ~100-byte JSON body, keep-alive. The first path segment says
 *                        who sent it (direct, base = oauth-sidecar, bare-undici, http-proxy, nginx); per
 *                        prefix it counts requests, ones without `Authorization: Bearer <token>`, and (for
 *                        oauth-sidecar and bare-undici) bearers this token endpoint never issued.
 *   POST /token          refresh_token grant → {"access_token":"bench-at-…","expires_in":3600,…}
 *   GET  /__bench/stats  the counters above, as JSON (read by the orchestrator after the rounds).
 *
 * Prints `{"ready":true,"port":N}` once listening; exits when its stdin closes (the orchestrator died).
 * Usage: node upstream.mjs <clientId> <clientSecret> <seedRefreshToken>
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { URLSearchParams } from 'node:url';

const [clientId = 'bench-client', clientSecret = 'bench-secret', seedRefreshToken = 'bench-seed'] = process.argv.slice(2);

// Exactly 100 bytes, built once: the upstream should cost as little as possible per request.
const body = Buffer.from(
  JSON.stringify({ ok: true, service: 'bench-upstream', message: 'hello from the bench upstream', items: [1, 2, 3, 4, 5] }),
);
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

/** Path prefix → who forwarded the request. `base` is oauth-sidecar's target path. */
const prefixes = { base: 'oauth-sidecar', direct: 'direct', 'bare-undici': 'bare-undici', 'http-proxy': 'http-proxy', nginx: 'nginx' };
const stats = {};
for (const name of [...Object.values(prefixes), 'other']) stats[name] = { requests: 0, missingBearer: 0, unknownToken: 0 };
const token = { requests: 0, issued: 0, rejected: 0, grantTypes: {} };

const issuedAccessTokens = new Set();
const validRefreshTokens = new Set([seedRefreshToken]);

function send(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Client credentials may come as HTTP Basic (the oauth2 preset's default) or in the form body. */
function clientOf(req, form) {
  const authorization = req.headers.authorization ?? '';
  if (authorization.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '' };
}

function handleToken(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    token.requests += 1;
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const grantType = form.get('grant_type') ?? '';
    token.grantTypes[grantType] = (token.grantTypes[grantType] ?? 0) + 1;
    const client = clientOf(req, form);
    if (client.id !== clientId || client.secret !== clientSecret) {
      token.rejected += 1;
      return send(res, 401, { error: 'invalid_client' });
    }
    if (grantType !== 'refresh_token') {
      token.rejected += 1;
      return send(res, 400, { error: 'unsupported_grant_type' });
    }
    if (!validRefreshTokens.has(form.get('refresh_token') ?? '')) {
      token.rejected += 1;
      return send(res, 400, { error: 'invalid_grant' });
    }
    const accessToken = `bench-at-${randomBytes(12).toString('hex')}`;
    const refreshToken = `bench-rt-${randomBytes(12).toString('hex')}`;
    issuedAccessTokens.add(accessToken);
    validRefreshTokens.add(refreshToken);
    token.issued += 1;
    send(res, 200, { access_token: accessToken, expires_in: 3600, refresh_token: refreshToken, token_type: 'bearer' });
  });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/token' && req.method === 'POST') return handleToken(req, res);
  if (url === '/__bench/stats') return send(res, 200, { paths: stats, token });

  const slash = url.indexOf('/', 1);
  const counters = stats[prefixes[url.slice(1, slash === -1 ? undefined : slash)] ?? 'other'];
  counters.requests += 1;
  const authorization = req.headers.authorization;
  if (authorization === undefined || !/^bearer \S/i.test(authorization)) counters.missingBearer += 1;
  else if (
    (counters === stats['oauth-sidecar'] || counters === stats['bare-undici']) &&
    !issuedAccessTokens.has(authorization.slice(7).trim())
  )
    counters.unknownToken += 1;

  // The bench sends no bodies, but drain anything so keep-alive connections stay reusable.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});

// Longer than the gaps between rounds' uses of one pool, so idle keep-alive sockets are not torn down
// mid-run (node's default is 5 s); the per-measurement warm-up re-fills pools anyway.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});

// The orchestrator holds our stdin; when it goes away (even SIGKILLed), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
