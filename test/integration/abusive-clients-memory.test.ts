/**
 * Memory stays bounded whatever clients do: a real proxy process gets hundreds of clients that start a
 * 1 MiB body and stall half-way, and hundreds that send a whole 1 MiB body to an upstream that answers
 * slowly. Without limits the proxy buffers every one of those bodies; with them it buffers at most
 * limits.maxBufferedBodyBytes and refuses or times out the rest. The proxy's peak resident memory
 * (VmHWM, Linux) is checked against a generous bound, and the proxy must still serve afterwards.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { digest, startPlainUpstream } from '../helpers/plain-upstream.js';
import { startProxyProcess, writeProxyConfig } from '../helpers/proxy-process.js';
import { rawClient, requestHead, type RawClient } from '../helpers/raw-client.js';
import { send } from '../helpers/raw-http.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { configYaml } from '../helpers/start-proxy.js';

const MiB = 1024 * 1024;
const SLOW_CLIENTS = 250;
const FULL_CLIENTS = 250;
/** What the proxy may buffer for replays, all requests together. */
const BUDGET = 32 * MiB;
/**
 * Peak resident memory allowed above the proxy's idle footprint: the budget plus socket and stream
 * buffers for 500 connections, with room to spare. Buffering every body would take about 375 MiB.
 */
const ALLOWED_GROWTH = 160 * MiB;

/** A resident-memory figure of /proc/<pid>/status, in bytes: VmRSS (now) or VmHWM (peak). */
function memoryOf(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Polls `check` every 100 ms for up to `ms`; whether it came true. */
async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

describe('memory under abusive clients (a real proxy process)', () => {
  it('stays bounded with hundreds of stalled and hundreds of 1 MiB bodies, and serves afterwards', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    const upstream = await startPlainUpstream((req, res) => {
      // A slow upstream: it reads the whole body, then takes its time to answer.
      void digest(req).then(({ length }) => setTimeout(() => res.end(String(length)), 500));
    });
    const top =
      'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, accessLog: false }\nstore: { type: memory }\n' +
      `limits: { maxBufferedBodyBytes: ${BUDGET}, clientBodyIdleTimeoutMs: 2000, maxClientConnections: 2048 }\n`;
    const route =
      `up:\n  target: ${upstream.origin}/base\n  maxConnections: 8\n  maxQueuedRequests: 64\n  queueTimeoutMs: 2000\n` +
      `  auth:\n    preset: apiax\n    tokenUrl: ${provider.tokenUrl}\n    refreshToken: ${provider.issueRefreshToken()}`;
    const proxy = await startProxyProcess(writeProxyConfig(configYaml(route, top)), 'memory');
    try {
      expect((await send(`${proxy.url}/up/warm`, { method: 'POST', body: 'warm' })).status).toBe(200);
      const idle = memoryOf(proxy.pid, 'VmRSS');
      const host = new URL(proxy.url).host;
      const body = Buffer.alloc(MiB, 0x61);
      const head = requestHead('POST', '/up/upload', host, [`Content-Length: ${MiB}`]);

      const clients: RawClient[] = [];
      for (let i = 0; i < SLOW_CLIENTS + FULL_CLIENTS; i++) {
        const client = await rawClient(proxy.url);
        client.write(head);
        // Half of them stop half-way through the body and never send the rest.
        client.write(i % 2 === 0 ? body.subarray(0, MiB / 2) : body);
        clients.push(client);
      }
      // Every client is answered (408 for the stalled, 200 or 503 for the others) or cut off in bounded time.
      const answered = () => clients.filter((client) => client.socket.destroyed || client.received().includes('\r\n\r\n')).length;
      const allAnswered = await within(30_000, () => answered() === clients.length);
      const peakGrowth = memoryOf(proxy.pid, 'VmHWM') - idle;
      console.info(`proxy memory: idle ${Math.round(idle / MiB)} MiB, peak ${Math.round(peakGrowth / MiB)} MiB above idle`);
      expect(peakGrowth).toBeLessThan(ALLOWED_GROWTH);
      expect(allAnswered, `${answered()} of ${clients.length} clients answered`).toBe(true);

      for (const client of clients) client.socket.destroy();
      expect(proxy.cli.child.exitCode).toBeNull();
      const after = await send(`${proxy.url}/up/after`, { method: 'POST', body: 'after' });
      expect([after.status, after.body.toString()]).toEqual([200, '5']);
    } finally {
      await provider.close();
    }
  }, 90_000);
});
