/**
 * Child process: the baseline oauth-sidecar must beat by 1.8x — a bare http-proxy 1.18.1 forwarder
 * that does the minimum an auth proxy does (replace Authorization with a fixed bearer) over a
 * keep-alive pool of 128 sockets, and nothing else (no token logic, no logging, no metrics).
 *
 * Prints `{"ready":true,"port":N}` once listening; exits when its stdin closes.
 * Usage: node http-proxy-baseline.mjs <target URL, e.g. http://127.0.0.1:1234/http-proxy>
 */
import http from 'node:http';
import httpProxy from 'http-proxy';

const target = process.argv[2];
if (!target) {
  console.error('usage: http-proxy-baseline.mjs <target-url>');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target, agent });

proxy.on('proxyReq', (proxyReq) => {
  proxyReq.setHeader('authorization', 'Bearer bench-baseline-token');
});

// Without a handler http-proxy throws on upstream errors; answer 502 like a real proxy would.
proxy.on('error', (_error, _req, res) => {
  if (res instanceof http.ServerResponse) {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway');
  } else {
    res.destroy();
  }
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
