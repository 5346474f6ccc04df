/**
 * Small network helpers for the orchestrator: pick free ports, GET a URL, poll until 200, and read
 * the "ready" line a child prints. Plain node:http with agent:false, so the orchestrator never
 * keeps a pooled connection open to a process being measured.
 */
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * `count` ports that were free a moment ago (for configs that need the numbers up front: proxy.yaml,
 * nginx.conf). All listeners stay open until every port is known, so the numbers are distinct.
 */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i += 1) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => /** @type {import('node:net').AddressInfo} */ (server.address()).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve()))));
  }
}

/** @returns {Promise<{ status: number, body: string }>} */
export function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/**
 * Polls `url` until it answers 200. Gives up after `timeoutMs`, or as soon as `isDead()` says the
 * process behind it has exited (no point waiting 15 s for a crashed child).
 */
export async function waitFor200(url, { timeoutMs = 15_000, intervalMs = 100, isDead = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (isDead()) throw new Error(`process exited before ${url} answered 200 (last: ${last})`);
    try {
      const { status, body } = await httpGet(url, 1000);
      if (status === 200) return;
      last = `${status} ${body.slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/**
 * The first stdout line of a child, parsed as JSON: our children announce `{"ready":true,"port":N}`.
 * Rejects when the child exits or stays silent for `timeoutMs`.
 */
export function readReadyLine(record, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: record.child.stdout });
    const timer = setTimeout(() => finish(new Error(`${record.name}: no ready line within ${timeoutMs} ms`)), timeoutMs);
    const onExit = () =>
      finish(new Error(`${record.name}: exited (${record.exitCode ?? record.signal ?? record.error?.message}) before it was ready`));
    record.done.then(onExit, onExit);
    function finish(error, value) {
      clearTimeout(timer);
      lines.close();
      // Keep draining stdout so a chatty child can never block on a full pipe.
      record.child.stdout.resume();
      if (error) reject(error);
      else resolve(value);
    }
    lines.once('line', (line) => {
      try {
        finish(null, JSON.parse(line));
      } catch {
        finish(new Error(`${record.name}: unexpected first line: ${line.slice(0, 200)}`));
      }
    });
  });
}
