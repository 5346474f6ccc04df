/**
 * Child process: the best oauth-sidecar's own engine can do — node:http in front of one keep-alive
 * undici Pool (128 connections, the sidecar's default `maxConnections`), Pool.dispatch writing straight
 * into the ServerResponse, as the sidecar does. It sends the upstream the request the sidecar sends for
 * the bench request (same header set: X-Forwarded-*, X-Request-Id, a bearer the token endpoint issued,
 * path under the same route prefix), and does nothing else: no token logic, logs, metrics or checks.
 *
 * The bearer is fetched once at start from the bench's fake token endpoint (credentials in
 * BENCH_CLIENT_ID / BENCH_CLIENT_SECRET / BENCH_REFRESH_TOKEN, not argv), so the upstream can tell it
 * is a token it issued. Prints `{"ready":true,"port":N}` once listening; exits when its stdin closes.
 * Usage: node bare-undici.mjs <target URL, e.g. http://127.0.0.1:1234/bare-undici> <route prefix, e.g. /bench>
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { URLSearchParams } from 'node:url';
import { Pool } from 'undici';

const [target, routePrefix = '/bench'] = process.argv.slice(2);
if (!target) {
  console.error('usage: bare-undici.mjs <target-url> [route-prefix]');
  process.exit(2);
}
const { origin, pathname } = new URL(target);
const basePath = pathname.replace(/\/$/, '');
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 4_000 });

// The sidecar's request header rules, reduced to what a plain forwarder must not pass on.
const dropped = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer']);
for (const name of ['proxy-authenticate', 'proxy-authorization', 'authorization', 'host', 'expect']) dropped.add(name);
for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']) dropped.add(name);

async function fetchBearer() {
  const { BENCH_CLIENT_ID: id = '', BENCH_CLIENT_SECRET: secret = '', BENCH_REFRESH_TOKEN: refreshToken = '' } = process.env;
  const { statusCode, body } = await pool.request({
    method: 'POST',
    path: '/token',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
  });
  const answer = await body.json();
  if (statusCode !== 200 || typeof answer.access_token !== 'string') throw new Error(`token endpoint answered ${statusCode}`);
  return `Bearer ${answer.access_token}`;
}

const bearer = await fetchBearer();

function forward(req, res) {
  const raw = req.rawHeaders;
  const headers = [];
  for (let i = 0; i < raw.length; i += 2) if (!dropped.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  headers.push('x-forwarded-for', req.socket.remoteAddress ?? 'unknown', 'x-forwarded-proto', 'http');
  headers.push('x-forwarded-host', req.headers.host ?? '', 'x-request-id', randomUUID(), 'authorization', bearer);
  const url = req.url ?? '/';
  const path = basePath + (url.startsWith(routePrefix) ? url.slice(routePrefix.length) || '/' : url);
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch(
    { method: req.method, path, headers, body: hasBody ? req : null },
    {
      onRequestStart() {},
      onResponseStart(controller, status, head) {
        for (const name of ['connection', 'keep-alive', 'transfer-encoding']) delete head[name];
        res.writeHead(status, head);
      },
      onResponseData(controller, chunk) {
        if (!res.write(chunk)) {
          controller.pause();
          res.once('drain', () => controller.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError() {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      },
    },
  );
}

const server = http.createServer(forward);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
