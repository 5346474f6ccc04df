#!/usr/bin/env node
/**
 * `npm run bench`: how fast is oauth-sidecar compared with a bare http-proxy forwarder and nginx?
 *
 * One run starts, each in its own process (so nothing measured shares an event loop with anything
 * else): an upstream + fake token endpoint, oauth-sidecar (default config, access log on), a bare
 * http-proxy 1.18.1 forwarder, and nginx with one worker when installed. It then loads each target
 * for --seconds in --rounds interleaved rounds (so drift hits every target alike), reports medians,
 * checks oauth-sidecar against its targets, counts token-store operations per proxied request, and
 * writes bench/results/latest.json. Every child is stopped at the end, on errors and on Ctrl-C.
 * See bench/README.md.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, usage } from './lib/args.mjs';
import { runLoad } from './lib/loadgen.mjs';
import { freePorts, httpGet, readReadyLine, waitFor200 } from './lib/net.mjs';
import { writeNginxConfig } from './lib/nginx.mjs';
import { abort, installCleanupHandlers, isStopping, removeOnExit, startChild, stopAll, stopChild } from './lib/processes.mjs';
import { sumCounter } from './lib/prometheus.mjs';
import { evaluateChecks, fmtMs, fmtRps, formatTable, summarize } from './lib/report.mjs';
import { LOAD_CPU, PROXY_CPU, detectPinning, findNginx, pinSelf, pinned, which } from './lib/system.mjs';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const childScript = (name) => fileURLToPath(new URL(`./children/${name}`, import.meta.url));
const resultsFile = fileURLToPath(new URL('./results/latest.json', import.meta.url));

/** Credentials shared by proxy.yaml and the fake token endpoint. */
const oauth = { clientId: 'bench-client', clientSecret: 'bench-secret', refreshToken: 'bench-seed' };

const TARGET_NAMES = ['direct', 'oauth-sidecar', 'http-proxy', 'nginx'];

/** After Ctrl-C / the watchdog, abort() is stopping the children and will exit: do nothing more (no partial report). */
async function haltIfStopping() {
  if (isStopping()) await new Promise(() => {});
}

function message(error) {
  return error instanceof Error ? error.message : String(error);
}

/** Children that print `{"ready":true,"port":N}` get stdin as a pipe: they exit when it closes (we died). */
async function startNodeChild(name, script, args, pinning, cpu) {
  const record = startChild(name, ...pinned(pinning, cpu, process.execPath, [script, ...args]), {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const ready = await readReadyLine(record);
  return { record, port: ready.port };
}

/**
 * oauth-sidecar with the default config shape: access log on (stdout goes nowhere, as it would to a
 * log shipper's pipe), memory store. Its stderr is forwarded with a prefix and its tail kept, so a
 * failed start can be reported with what the proxy said.
 */
async function startSidecar(tmp, upstreamPort, pinning) {
  const [listenPort, adminPort] = await freePorts(2);
  const configPath = path.join(tmp, 'proxy.yaml');
  writeFileSync(
    configPath,
    `listen: 127.0.0.1:${listenPort}
admin: 127.0.0.1:${adminPort}
log: { level: info }
store: { type: memory }
upstreams:
  bench:
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
  const record = startChild('oauth-sidecar', ...pinned(pinning, PROXY_CPU, process.execPath, [bin, 'serve', '--config', configPath]), {
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
  return { record, url: `http://127.0.0.1:${listenPort}/bench/hello`, adminUrl };
}

async function startNginx(nginxPath, tmp, upstreamPort, pinning) {
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

async function readSidecarCounters(adminUrl) {
  const { status, body } = await httpGet(`${adminUrl}/metrics`, 5000);
  if (status !== 200) throw new Error(`GET ${adminUrl}/metrics answered ${status}`);
  return {
    storeOperations: sumCounter(body, 'oauth_sidecar_store_operations_total'),
    requests: sumCounter(body, 'oauth_sidecar_requests_total'),
  };
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`bench: ${message(error)}\n\n${usage}`);
    return 2;
  }
  if (options.help) {
    console.log(usage);
    return 0;
  }
  installCleanupHandlers();

  const pinning = detectPinning();
  pinSelf(pinning, LOAD_CPU);
  const wrkPath = options.loadgen === 'autocannon' ? null : which('wrk');
  if (options.loadgen === 'wrk' && !wrkPath) throw new Error('--loadgen wrk: no wrk on PATH');
  const tool = wrkPath ? 'wrk' : 'autocannon';
  const nginxPath = findNginx();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'oauth-sidecar-bench-'));
  removeOnExit(tmp);

  // Bounded no matter what hangs: startup + every measurement with generous slack.
  const budgetSeconds = 90 + TARGET_NAMES.length * options.rounds * (options.seconds + options.warmup + 30);
  const watchdog = setTimeout(() => {
    console.error(`bench: watchdog: still running after ${budgetSeconds} s, stopping`);
    abort(1);
  }, budgetSeconds * 1000);

  const loadDesc =
    tool === 'wrk'
      ? `wrk (${wrkPath}, -t1 -c${options.connections})`
      : `autocannon (child process, ${options.connections} connections, pipelining 1)`;
  console.log('oauth-sidecar bench');
  console.log(`  node:           ${process.version} (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'})`);
  console.log(`  load generator: ${loadDesc}`);
  console.log(`  nginx:          ${nginxPath ? `found at ${nginxPath} (1 worker)` : 'not found (nginx target skipped)'}`);
  console.log(`  CPU pinning:    ${pinning.enabled ? `applied — ${pinning.reason}` : `not applied (${pinning.reason})`}`);
  // Other work on the box (a test run, a build) skews every number: say how busy it was at the start.
  const loadAverage = os.loadavg()[0];
  console.log(
    `  machine load:   ${loadAverage.toFixed(2)} (1-min average at start${loadAverage > 0.5 ? '; other work may be running, expect noisy numbers' : ''})`,
  );
  console.log(
    `  plan:           ${options.rounds} interleaved round(s) × ${options.seconds} s per target (+${options.warmup} s warm-up each); medians reported`,
  );
  console.log('');

  /** @type {Record<string, { name: string, status: 'ok' | 'skipped' | 'failed', note: string, url: string | null, rounds: object[], errors: string[] }>} */
  const targets = Object.fromEntries(
    TARGET_NAMES.map((name) => [name, { name, status: 'skipped', note: '', url: null, rounds: [], errors: [] }]),
  );
  const enable = (name, url) => Object.assign(targets[name], { status: 'ok', url });
  const disable = (name, status, note) => Object.assign(targets[name], { status, note });

  const upstream = await startNodeChild(
    'upstream',
    childScript('upstream.mjs'),
    [oauth.clientId, oauth.clientSecret, oauth.refreshToken],
    pinning,
    LOAD_CPU,
  );
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  enable('direct', `${upstreamUrl}/direct/hello`);

  let sidecar = null;
  let countersBefore = null;
  if (!existsSync(path.join(repoRoot, 'dist', 'main.js'))) {
    console.log('oauth-sidecar: not built (run npm run build)');
    disable('oauth-sidecar', 'skipped', 'not built (run npm run build)');
  } else {
    try {
      sidecar = await startSidecar(tmp, upstream.port, pinning);
      // Before any proxied request (smoke check, warm-ups, rounds): all of them count.
      countersBefore = await readSidecarCounters(sidecar.adminUrl);
      enable('oauth-sidecar', sidecar.url);
    } catch (error) {
      console.log(`oauth-sidecar: failed to start: ${message(error)}`);
      disable('oauth-sidecar', 'failed', `failed to start: ${message(error).split('\n')[0]}`);
    }
  }

  await haltIfStopping();
  try {
    const baseline = await startNodeChild(
      'http-proxy',
      childScript('http-proxy-baseline.mjs'),
      [`${upstreamUrl}/http-proxy`],
      pinning,
      PROXY_CPU,
    );
    enable('http-proxy', `http://127.0.0.1:${baseline.port}/hello`);
  } catch (error) {
    console.log(`http-proxy: failed to start: ${message(error)}`);
    disable('http-proxy', 'failed', `failed to start: ${message(error)}`);
  }

  await haltIfStopping();
  if (!nginxPath) {
    disable('nginx', 'skipped', 'nginx not installed');
  } else {
    try {
      const nginx = await startNginx(nginxPath, tmp, upstream.port, pinning);
      enable('nginx', nginx.url);
    } catch (error) {
      console.log(`nginx: failed to start: ${message(error)}`);
      disable('nginx', 'failed', `failed to start: ${message(error).split('\n')[0]}`);
    }
  }

  await haltIfStopping();
  // Smoke check: one request through each target must come back 200 before we load it.
  for (const target of Object.values(targets).filter((t) => t.status === 'ok')) {
    try {
      const { status, body } = await httpGet(target.url, 5000);
      if (status !== 200) throw new Error(`GET ${target.url} answered ${status}: ${body.slice(0, 300)}`);
    } catch (error) {
      console.log(`${target.name}: smoke request failed: ${message(error)}`);
      disable(target.name, 'failed', `smoke request failed: ${message(error)}`);
    }
  }

  // Interleaved rounds; the order rotates each round so no target always runs first or last.
  const active = Object.values(targets).filter((t) => t.status === 'ok');
  for (let round = 0; round < options.rounds; round += 1) {
    const order = active.map((_, i) => active[(i + round) % active.length]);
    for (const target of order) {
      if (isStopping()) break;
      const load = { tool, wrkPath, pinning, url: target.url, connections: options.connections };
      try {
        if (options.warmup > 0) await runLoad({ ...load, seconds: options.warmup });
        const result = await runLoad({ ...load, seconds: options.seconds });
        target.rounds.push(result);
        console.log(
          `round ${round + 1}/${options.rounds}  ${target.name.padEnd(13)}  ${fmtRps(result.rps).padStart(8)} req/s   p50 ${fmtMs(result.p50Ms)} ms   p99 ${fmtMs(result.p99Ms)} ms` +
            `${result.non2xx || result.errors ? `   non-2xx ${result.non2xx}  errors ${result.errors}` : ''}`,
        );
      } catch (error) {
        if (isStopping()) break;
        target.errors.push(message(error));
        console.log(`round ${round + 1}/${options.rounds}  ${target.name}: measurement failed: ${message(error)}`);
      }
    }
  }

  await haltIfStopping();
  // Store operations per proxied request (target 0: the token store is never on the request path).
  let store = null;
  if (sidecar && countersBefore) {
    try {
      const after = await readSidecarCounters(sidecar.adminUrl);
      const operations = after.storeOperations - countersBefore.storeOperations;
      const requests = after.requests - countersBefore.requests;
      store = { operations, requests, perRequest: requests > 0 ? operations / requests : null, before: countersBefore, after };
    } catch (error) {
      console.log(`oauth-sidecar: could not read /metrics: ${message(error)}`);
    }
  }

  let upstreamStats = null;
  try {
    upstreamStats = JSON.parse((await httpGet(`${upstreamUrl}/__bench/stats`, 5000)).body);
  } catch (error) {
    console.log(`upstream: could not read stats: ${message(error)}`);
  }

  // ---- report ----
  const summaries = Object.fromEntries(Object.values(targets).map((t) => [t.name, t.rounds.length ? summarize(t.rounds) : null]));
  const rows = Object.values(targets).map((t) => {
    const s = summaries[t.name];
    if (!s) {
      const note = t.status === 'ok' ? `no successful round: ${t.errors[0] ?? ''}` : t.note;
      return [t.name, '-', '-', '-', '-', '-', note.length > 72 ? `${note.slice(0, 71)}…` : note];
    }
    return [t.name, fmtRps(s.rps), fmtMs(s.p50Ms), fmtMs(s.p99Ms), s.non2xx, s.errors, t.rounds.map((r) => fmtRps(r.rps)).join(' / ')];
  });
  console.log('');
  console.log(
    `Results (median of ${options.rounds} round(s), ${options.seconds} s each, ${options.connections} connections, ${tool}; non-2xx and errors summed over rounds)`,
  );
  console.log(formatTable(['target', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'req/s per round / note'], rows, [6]));

  const checks = evaluateChecks({
    sidecar: summaries['oauth-sidecar'],
    httpProxy: summaries['http-proxy'],
    nginx: summaries.nginx,
    storeOpsPerRequest: store?.perRequest ?? null,
  });
  console.log('');
  console.log(
    formatTable(
      ['check', 'value', 'target', 'result'],
      checks.map((c) => [c.name, c.display, c.target, c.result]),
    ),
  );
  console.log('');
  console.log(
    `store operations per proxied request: ${store?.perRequest ?? 'n/a'}` +
      (store ? ` (${store.operations} store operations over ${store.requests} proxied requests)` : ''),
  );
  if (upstreamStats) {
    const seen = upstreamStats.paths['oauth-sidecar'];
    if (targets['oauth-sidecar'].status === 'ok') {
      console.log(
        `upstream via oauth-sidecar: ${seen.requests} requests, ${seen.missingBearer} without a Bearer token, ${seen.unknownToken} with a token the token endpoint never issued` +
          ` (token endpoint: ${upstreamStats.token.requests} request(s), ${upstreamStats.token.rejected} rejected)`,
      );
    }
    const otherMissing = ['http-proxy', 'nginx'].filter((n) => upstreamStats.paths[n].missingBearer > 0);
    if (otherMissing.length) console.log(`upstream: requests without a Bearer token via ${otherMissing.join(', ')}`);
  }

  const results = {
    generatedAt: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    cpus: os.cpus().length,
    loadAverageAtStart: loadAverage,
    loadGenerator: { tool, path: wrkPath, connections: options.connections },
    nginx: { found: Boolean(nginxPath), path: nginxPath },
    pinning: { applied: pinning.enabled, detail: pinning.reason },
    options: { seconds: options.seconds, rounds: options.rounds, warmupSeconds: options.warmup },
    targets: Object.fromEntries(
      Object.values(targets).map((t) => [
        t.name,
        { status: t.status, note: t.note || undefined, url: t.url, median: summaries[t.name], rounds: t.rounds, errors: t.errors },
      ]),
    ),
    checks: checks.map(({ name, value, target, result }) => ({ name, value, target, result })),
    storeOperations: store,
    upstream: upstreamStats,
  };
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nJSON written to ${path.relative(process.cwd(), resultsFile) || resultsFile}`);

  clearTimeout(watchdog);
  const failed = Object.values(targets).some((t) => t.status === 'failed' || t.errors.length > 0);
  return failed ? 1 : 0;
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (error) => {
    console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAll(1000);
    process.exit(1);
  },
);
