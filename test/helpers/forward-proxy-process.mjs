/**
 * A real forward proxy (the `proxy` package, TooTallNate's, which undici's own tests use) run as a child
 * process by test/helpers/forward-proxy.ts, so a test can put a proxy between the sidecar and its peers the
 * way a corporate egress proxy sits there. Plain JavaScript so it runs without a build step.
 *
 * Started with fork() (an IPC channel is required). It listens on 127.0.0.1:0 and reports
 * `{ type: 'listening', port }`; it answers `{ type: 'stats', id }` with `{ type: 'stats', id, stats }`.
 * With FORWARD_PROXY_USERNAME and FORWARD_PROXY_PASSWORD in its environment (never argv) it demands Basic
 * proxy authentication and answers 407 otherwise. It counts, after authentication: CONNECT requests per
 * target `host:port` (tunnels) and absolute-form requests (plain); and it counts 407 refusals and whether any
 * request carried Proxy-Authorization (never its value).
 *
 * Only loopback targets are served (403 otherwise), so a test can never send traffic beyond this machine.
 * It exits when its parent goes away (the IPC channel closes), so a killed test process leaves no orphan.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { isIP } from 'node:net';
import { createProxy } from 'proxy';

if (!process.send) {
  console.error('forward-proxy-process.mjs must be started with fork() (it reports over IPC)');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));

const username = process.env.FORWARD_PROXY_USERNAME;
const password = process.env.FORWARD_PROXY_PASSWORD;
const expectedDigest =
  username === undefined ? undefined : digest(`Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`);

const stats = { tunnels: {}, plainRequests: 0, authRefusals: 0, proxyAuthorizationSeen: false };

const server = createProxy(http.createServer());
server.authenticate = (request) => {
  const header = request.headers['proxy-authorization'];
  if (header !== undefined) stats.proxyAuthorizationSeen = true;
  if (expectedDigest !== undefined && (typeof header !== 'string' || !timingSafeEqual(digest(header), expectedDigest))) {
    stats.authRefusals += 1;
    return false;
  }
  if (request.method === 'CONNECT') stats.tunnels[request.url] = (stats.tunnels[request.url] ?? 0) + 1;
  else stats.plainRequests += 1;
  return true;
};

// The package's own handlers run only for loopback targets; everything else is refused before it connects.
const [forwardRequest] = server.listeners('request');
const [openTunnel] = server.listeners('connect');
server.removeAllListeners('request');
server.removeAllListeners('connect');
server.on('request', (request, response) => {
  let target;
  try {
    target = /^http:\/\//i.test(request.url ?? '') ? new URL(request.url) : undefined;
  } catch {
    target = undefined;
  }
  if (!target) return void response.writeHead(400).end('a forward proxy expects an absolute-form http:// request target\n');
  if (!isLoopbackHost(target.hostname)) return void response.writeHead(403).end('this test proxy serves loopback targets only\n');
  forwardRequest.call(server, request, response);
});
server.on('connect', (request, socket, head) => {
  const host = (request.url ?? '').replace(/:\d+$/, '');
  if (!isLoopbackHost(host)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  openTunnel.call(server, request, socket, head);
});

process.on('message', (message) => {
  if (message?.type === 'stats') process.send({ type: 'stats', id: message.id, stats });
});

server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));

function digest(text) {
  return createHash('sha256').update(text).digest();
}

function isLoopbackHost(host) {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}
