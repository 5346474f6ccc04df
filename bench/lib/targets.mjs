/**
 * Starting the processes the bench measures: the upstream (+ token endpoint), oauth-sidecar, the two
 * bare forwarders and nginx. Each start returns once the target answers (or throws with what it said),
 * and every process goes through processes.mjs, so it is stopped at the end whatever happens.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, httpGet, readReadyLine, waitFor200 } from './net.mjs';
import { writeNginxConfig } from './nginx.mjs';
import { startChild, stopChild } from './processes.mjs';
import { LOAD_CPU, PROXY_CPU, pinned } from './system.mjs';
import { sumCounter } from './prometheus.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const childScript = (name) => fileURLToPath(new URL(`../children/${name}`, import.meta.url));

/** Credentials shared by proxy.yaml, the bare-undici forwarder and the fake token endpoint (bench-only values). */
const oauth = { clientId: 'bench-client', clientSecret: 'bench-secret', refreshToken: 'bench-seed' };

/** oauth-sidecar's route: requests to /bench/… go to the upstream's /base/…; bare-undici strips the same prefix. */
const ROUTE_PREFIX = '/bench';

export function message(error) {
  return error instanceof Error ? error.message : String(error);
}

/** Children that print `{"ready":true,"port":N}` get stdin as a pipe: they exit when it closes (we died). */
async function startNodeChild(name, script, args, pinning, cpu, env = undefined) {
  const record = startChild(name, ...pinned(pinning, cpu, process.execPath, [script, ...args]), {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: env ? { ...process.env, ...env } : process.env,
  });
  const ready = await readReadyLine(record);
  return { record, port: ready.port };
}

/** The upstream API and the fake token endpoint, on the load core. @returns {Promise<{ record: object, port: number, url: string }>} */
export async function startUpstream(pinning) {
  const args = [oauth.clientId, oauth.clientSecret, oauth.refreshToken];
  const { record, port } = await startNodeChild('upstream', childScript('upstream.mjs'), args, pinning, LOAD_CPU);
  return { record, port, url: `http://127.0.0.1:${port}` };
}

/**
 * oauth-sidecar with the default config shape: access log on (stdout goes nowhere, as it would to a
 * log shipper's pipe), memory store. Its stderr is forwarded with a prefix and its tail kept, so a
 * failed start can be reported with what the proxy said. `nodeArgs` go before the script (--cpu-prof).
 */
export async function startSidecar(tmp, upstreamPort, pinning, { nodeArgs = [] } = {}) {
  const [listenPort, adminPort] = await freePorts(2);
  const configPath = path.join(tmp, 'proxy.yaml');
  writeFileSync(
    configPath,
    `listen: 127.0.0.1:${listenPort}
admin: 127.0.0.1:${adminPort}
log: { level: info }
store: { type: memory }
upstreams:
  ${ROUTE_PREFIX.slice(1)}:
    target: http://127.0.0.1:${upstreamPort}/base
    auth:
      preset: oauth2
      tokenUrl: http://127.0.0.1:${upstreamPort}/token
      clientId: ${oauth.clientId}
      clientSecret: ${oauth.clientSecret}
      refreshToken: ${oauth.refreshToken}
`,
  );
  const bin = path.join(repoRoot, 'bin', 'oauth-sidecar.js');
  const argv = [...nodeArgs, bin, 'serve', '--config', configPath];
  const record = startChild('oauth-sidecar', ...pinned(pinning, PROXY_CPU, process.execPath, argv), {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  record.child.stderr.on('data', (chunk) => {
    const text = chunk.toString('utf8');
    stderrTail = (stderrTail + text).slice(-4000);
    process.stderr.write(text.replace(/^(?=.)/gm, '[oauth-sidecar] '));
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitFor200(`${adminUrl}/readyz`, { timeoutMs: 15_000, isDead: () => record.exited });
  } catch (error) {
    const exit = record.exited ? ` (exit ${record.exitCode ?? record.signal ?? record.error?.message})` : '';
    await stopChild(record);
    throw new Error(
      `${message(error)}${exit}${stderrTail ? `\n--- oauth-sidecar stderr ---\n${stderrTail.trimEnd()}` : ' — it wrote nothing to stderr'}`,
    );
  }
  return { record, url: `http://127.0.0.1:${listenPort}${ROUTE_PREFIX}/hello`, adminUrl };
}

/** node:http + one undici Pool, with a bearer it fetches from the token endpoint (credentials in its env, not argv). */
export async function startBareUndici(upstreamUrl, pinning) {
  const env = { BENCH_CLIENT_ID: oauth.clientId, BENCH_CLIENT_SECRET: oauth.clientSecret, BENCH_REFRESH_TOKEN: oauth.refreshToken };
  const args = [`${upstreamUrl}/bare-undici`, ROUTE_PREFIX];
  const { record, port } = await startNodeChild('bare-undici', childScript('bare-undici.mjs'), args, pinning, PROXY_CPU, env);
  return { record, url: `http://127.0.0.1:${port}${ROUTE_PREFIX}/hello` };
}

export async function startHttpProxy(upstreamUrl, pinning) {
  const { record, port } = await startNodeChild(
    'http-proxy',
    childScript('http-proxy-baseline.mjs'),
    [`${upstreamUrl}/http-proxy`],
    pinning,
    PROXY_CPU,
  );
  return { record, url: `http://127.0.0.1:${port}/hello` };
}

export async function startNginx(nginxPath, tmp, upstreamPort, pinning) {
  const [listenPort] = await freePorts(1);
  const args = writeNginxConfig(tmp, { listenPort, upstreamPort });
  const record = startChild('nginx', ...pinned(pinning, PROXY_CPU, nginxPath, args), { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${listenPort}/hello`;
  try {
    await waitFor200(url, { timeoutMs: 10_000, isDead: () => record.exited });
  } catch (error) {
    await stopChild(record);
    let log = '';
    try {
      log = readFileSync(path.join(tmp, 'error.log'), 'utf8').trim().slice(-2000);
    } catch {
      // no log written
    }
    throw new Error(`${message(error)}${log ? `\n--- nginx error.log ---\n${log}` : ''}`);
  }
  return { record, url };
}

export async function readSidecarCounters(adminUrl) {
  const { status, body } = await httpGet(`${adminUrl}/metrics`, 5000);
  if (status !== 200) throw new Error(`GET ${adminUrl}/metrics answered ${status}`);
  return {
    storeOperations: sumCounter(body, 'oauth_sidecar_store_operations_total'),
    requests: sumCounter(body, 'oauth_sidecar_requests_total'),
  };
}
