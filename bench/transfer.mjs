/**
 * `npm run bench:transfer`: a 1 GiB download and a 1 GiB upload through oauth-sidecar, reporting the time
 * and the proxy process's peak resident memory (VmHWM), to show that bodies stream with flat memory.
 * Everything runs on loopback; the proxy is the real CLI with a memory store and a local token endpoint.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from './lib/net.mjs';

const GIB = 1024 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 120);
const root = fileURLToPath(new URL('..', import.meta.url));

/** Upstream and token endpoint in this process: GET streams 1 GiB, POST counts what it receives. */
function startUpstream(port) {
  const server = http.createServer((req, res) => {
    if (req.url === '/token') {
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ access_token: `transfer-at-${Date.now()}`, expires_in: 3600, token_type: 'bearer' })));
      return;
    }
    if (req.method === 'GET') {
      let left = GIB;
      res.writeHead(200, { 'content-length': String(left) });
      const pump = () => {
        while (left > 0) {
          left -= CHUNK.length;
          if (!res.write(CHUNK)) return res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    let received = 0;
    req.on('data', (chunk) => (received += chunk.length));
    req.on('end', () => res.end(JSON.stringify({ received })));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function peakRssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Math.round(Number(line?.replace(/\D+/g, '') ?? 0) / 1024);
}

async function waitReady(adminPort) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('oauth-sidecar did not become ready');
}

function download(port) {
  return new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${port}/big/file`, (res) => {
        let size = 0;
        res.on('data', (chunk) => (size += chunk.length));
        res.on('end', () => resolve(size));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function upload(port) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/big/upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(JSON.parse(text).received));
      },
    );
    req.on('error', reject);
    let left = GIB;
    const pump = () => {
      while (left > 0) {
        left -= CHUNK.length;
        if (!req.write(CHUNK)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

const [upstreamPort, proxyPort, adminPort] = await freePorts(3);
const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-transfer-'));
writeFileSync(
  join(dir, 'proxy.yaml'),
  `listen: 127.0.0.1:${proxyPort}
admin: 127.0.0.1:${adminPort}
log: { level: warn }
store: { type: memory }
upstreams:
  big:
    target: http://127.0.0.1:${upstreamPort}/
    auth: { preset: oauth2, tokenUrl: http://127.0.0.1:${upstreamPort}/token, clientId: transfer, clientSecret: transfer, refreshToken: transfer-seed }
`,
);
const upstream = await startUpstream(upstreamPort);
const proxy = spawn(process.execPath, [join(root, 'bin', 'oauth-sidecar.js'), 'serve', '--config', join(dir, 'proxy.yaml')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  await waitReady(adminPort);
  const atStart = peakRssMiB(proxy.pid);
  let started = performance.now();
  const downloaded = await download(proxyPort);
  const downloadSeconds = (performance.now() - started) / 1000;
  const afterDownload = peakRssMiB(proxy.pid);
  started = performance.now();
  const uploaded = await upload(proxyPort);
  const uploadSeconds = (performance.now() - started) / 1000;
  const afterUpload = peakRssMiB(proxy.pid);
  console.log(`download: ${downloaded} bytes in ${downloadSeconds.toFixed(2)} s`);
  console.log(`upload:   ${uploaded} bytes in ${uploadSeconds.toFixed(2)} s`);
  console.log(`proxy peak RSS (VmHWM): ${atStart} MiB ready, ${afterDownload} MiB after the download, ${afterUpload} MiB after the upload`);
  if (downloaded !== GIB || uploaded !== GIB) process.exitCode = 1;
} finally {
  proxy.kill('SIGTERM');
  upstream.close();
  upstream.closeAllConnections();
  rmSync(dir, { recursive: true, force: true });
}
