#!/usr/bin/env node
/**
 * `npm run bench`: how fast is oauth-sidecar compared with the best its own engine can do, a bare
 * http-proxy forwarder and nginx?
 *
 * One run starts, each in its own process (so nothing measured shares an event loop with anything
 * else): an upstream + fake token endpoint, oauth-sidecar (default config, access log on), bare-undici
 * (node:http + one undici Pool, the sidecar's engine with nothing else), a bare http-proxy 1.18.1
 * forwarder, and nginx with one worker when installed. It reads oauth-sidecar's memory idle and under
 * 256 connections, then loads each target for --seconds in --rounds interleaved rounds (so drift hits
 * every target alike), each round also timing direct, bare-undici and oauth-sidecar at a low fixed
 * rate; it reports medians, checks oauth-sidecar against its targets, counts token-store operations
 * per proxied request, and writes bench/results/latest.json. `--profile` instead CPU-profiles
 * oauth-sidecar under load (lib/profile-mode.mjs). Every child is stopped at the end, on errors and
 * on Ctrl-C. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, usage } from './lib/args.mjs';
import { runFixedRate, runLoad } from './lib/loadgen.mjs';
import { readMemory, resetPeak } from './lib/memory.mjs';
import { httpGet } from './lib/net.mjs';
import { abort, installCleanupHandlers, isStopping, removeOnExit, stopAll } from './lib/processes.mjs';
import { runProfile } from './lib/profile-mode.mjs';
import { evaluateChecks, fmtMs, fmtRps, formatTable, summarize, summarizeLowLoad } from './lib/report.mjs';
import { LOAD_CPU, detectPinning, findNginx, pinSelf, which } from './lib/system.mjs';
import { message, readSidecarCounters, startBareUndici, startHttpProxy, startNginx, startSidecar, startUpstream } from './lib/targets.mjs';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const resultsFile = path.join(resultsDir, 'latest.json');

const TARGET_NAMES = ['direct', 'oauth-sidecar', 'bare-undici', 'http-proxy', 'nginx'];
/** Timed at a low fixed rate each round: the proxy's own latency shows as the difference to direct. */
const LOW_LOAD_TARGETS = ['direct', 'bare-undici', 'oauth-sidecar'];
/** The memory check: peak RSS while this many connections load oauth-sidecar for a short run. */
const MEMORY_CONNECTIONS = 256;
const MEMORY_LOAD_MAX_SECONDS = 5;
/** Quiet time after the warm-up before the idle RSS is read (let in-flight work and timers settle). */
const IDLE_SETTLE_MS = 2000;

/** After Ctrl-C / the watchdog, abort() is stopping the children and will exit: do nothing more (no partial report). */
async function haltIfStopping() {
  if (isStopping()) await new Promise(() => {});
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

/**
 * oauth-sidecar's resident memory: just after start (ready, one smoke request), idle after a warm-up
 * (the steady state the check holds, before the rounds), then the peak while MEMORY_CONNECTIONS
 * connections load it. The peak counter is reset first where the
 * kernel allows, so the peak is this run's and not the warm-up's.
 */
async function measureSidecarMemory(sidecar, load, options) {
  const pid = sidecar.record.child.pid;
  const atStart = readMemory(pid);
  if (atStart === null) return { unavailable: `cannot read /proc/${pid}/status (not Linux?)` };
  await runLoad({ ...load, seconds: Math.max(options.warmup, 2) });
  await sleep(IDLE_SETTLE_MS);
  const idle = readMemory(pid);
  const peakReset = resetPeak(pid);
  const seconds = Math.min(options.seconds, MEMORY_LOAD_MAX_SECONDS);
  const run = await runLoad({ ...load, connections: MEMORY_CONNECTIONS, seconds });
  const after = readMemory(pid);
  return {
    connections: MEMORY_CONNECTIONS,
    seconds,
    startMiB: atStart.rssMiB,
    idleMiB: idle?.rssMiB ?? NaN,
    peakMiB: after?.peakMiB ?? NaN,
    peakSinceStart: !peakReset,
    run,
  };
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

  const hasDist = existsSync(path.join(repoRoot, 'dist', 'main.js'));
  const lowLoadCount = LOW_LOAD_TARGETS.length;
  // Bounded no matter what hangs: startup + every measurement with generous slack.
  const budgetSeconds = options.profile
    ? 120 + options.seconds + options.warmup
    : 120 +
      options.rounds * (TARGET_NAMES.length + lowLoadCount) * (options.seconds + options.warmup + 30) +
      (options.warmup + MEMORY_LOAD_MAX_SECONDS + 60);
  const watchdog = setTimeout(() => {
    console.error(`bench: watchdog: still running after ${budgetSeconds} s, stopping`);
    abort(1);
  }, budgetSeconds * 1000);

  const loadDesc =
    tool === 'wrk'
      ? `wrk (${wrkPath}, -t1 -c${options.connections})`
      : `autocannon (child process, ${options.connections} connections, pipelining 1)`;
  console.log(options.profile ? 'oauth-sidecar bench --profile' : 'oauth-sidecar bench');
  console.log(`  node:           ${process.version} (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'})`);
  console.log(`  load generator: ${loadDesc}`);
  if (!options.profile)
    console.log(`  nginx:          ${nginxPath ? `found at ${nginxPath} (1 worker)` : 'not found (nginx target skipped)'}`);
  console.log(`  CPU pinning:    ${pinning.enabled ? `applied — ${pinning.reason}` : `not applied (${pinning.reason})`}`);
  // Other work on the box (a test run, a build) skews every number: say how busy it was at the start.
  const loadAverage = os.loadavg()[0];
  console.log(
    `  machine load:   ${loadAverage.toFixed(2)} (1-min average at start${loadAverage > 0.5 ? '; other work may be running, expect noisy numbers' : ''})`,
  );
  console.log(
    options.profile
      ? `  plan:           oauth-sidecar under node --cpu-prof, ${options.warmup} s warm-up + ${options.seconds} s load, then SIGTERM`
      : `  plan:           ${options.rounds} interleaved round(s) × ${options.seconds} s per target (+${options.warmup} s warm-up each), ` +
          `then ${options.rate} req/s low-load runs of ${LOW_LOAD_TARGETS.join(', ')}; medians reported`,
  );
  console.log('');

  if (options.profile) {
    if (!hasDist) throw new Error('--profile needs dist/ (run npm run build)');
    const code = await runProfile({ options, tool, wrkPath, pinning, tmp, resultsDir });
    clearTimeout(watchdog);
    return code;
  }

  /** @type {Record<string, { name: string, status: 'ok' | 'skipped' | 'failed', note: string, url: string | null, rounds: object[], lowLoad: object[], errors: string[] }>} */
  const targets = Object.fromEntries(
    TARGET_NAMES.map((name) => [name, { name, status: 'skipped', note: '', url: null, rounds: [], lowLoad: [], errors: [] }]),
  );
  const enable = (name, url) => Object.assign(targets[name], { status: 'ok', url });
  const disable = (name, status, note) => Object.assign(targets[name], { status, note });

  const upstream = await startUpstream(pinning);
  const upstreamUrl = upstream.url;
  enable('direct', `${upstreamUrl}/direct/hello`);

  let sidecar = null;
  let countersBefore = null;
  if (!hasDist) {
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

  for (const [name, start] of [
    ['bare-undici', () => startBareUndici(upstreamUrl, pinning)],
    ['http-proxy', () => startHttpProxy(upstreamUrl, pinning)],
  ]) {
    await haltIfStopping();
    try {
      enable(name, (await start()).url);
    } catch (error) {
      console.log(`${name}: failed to start: ${message(error)}`);
      disable(name, 'failed', `failed to start: ${message(error)}`);
    }
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

  const loadFor = (url) => ({ tool, wrkPath, pinning, url, connections: options.connections });

  // Memory first, while oauth-sidecar has served only warm-up traffic: idle RSS, then the c256 peak.
  await haltIfStopping();
  let memory = null;
  if (targets['oauth-sidecar'].status === 'ok') {
    try {
      memory = await measureSidecarMemory(sidecar, loadFor(sidecar.url), options);
      if (memory.unavailable) console.log(`oauth-sidecar memory: not measured: ${memory.unavailable}`);
      else
        console.log(
          `memory        oauth-sidecar  at start ${memory.startMiB.toFixed(1)} MiB RSS   idle after warm-up ${memory.idleMiB.toFixed(1)} MiB RSS   peak ${memory.peakMiB.toFixed(1)} MiB RSS at c${memory.connections}` +
            ` (${memory.seconds} s, ${fmtRps(memory.run.rps)} req/s${memory.run.non2xx || memory.run.errors ? `, non-2xx ${memory.run.non2xx}, errors ${memory.run.errors}` : ''})`,
        );
    } catch (error) {
      if (!isStopping()) console.log(`oauth-sidecar memory: measurement failed: ${message(error)}`);
      memory = { failed: message(error) };
    }
  }

  // Interleaved rounds; the order rotates each round so no target always runs first or last. Each
  // round loads every target, then times the low-load targets at the fixed rate.
  const active = Object.values(targets).filter((t) => t.status === 'ok');
  const lowLoadActive = active.filter((t) => LOW_LOAD_TARGETS.includes(t.name));
  for (let round = 0; round < options.rounds; round += 1) {
    const label = `round ${round + 1}/${options.rounds}`;
    for (const target of active.map((_, i) => active[(i + round) % active.length])) {
      if (isStopping()) break;
      const load = loadFor(target.url);
      try {
        if (options.warmup > 0) await runLoad({ ...load, seconds: options.warmup });
        const result = await runLoad({ ...load, seconds: options.seconds });
        target.rounds.push(result);
        console.log(
          `${label}  ${target.name.padEnd(13)}  ${fmtRps(result.rps).padStart(8)} req/s   p50 ${fmtMs(result.p50Ms)} ms   p99 ${fmtMs(result.p99Ms)} ms` +
            `${result.non2xx || result.errors ? `   non-2xx ${result.non2xx}  errors ${result.errors}` : ''}`,
        );
      } catch (error) {
        if (isStopping()) break;
        target.errors.push(message(error));
        console.log(`${label}  ${target.name}: measurement failed: ${message(error)}`);
      }
    }
    for (const target of lowLoadActive.map((_, i) => lowLoadActive[(i + round) % lowLoadActive.length])) {
      if (isStopping()) break;
      try {
        const run = { pinning, url: target.url, rate: options.rate, seconds: options.seconds, warmupSeconds: options.warmup };
        const result = await runFixedRate(run);
        target.lowLoad.push(result);
        console.log(
          `${label}  ${target.name.padEnd(13)}  at ${fmtRps(options.rate)} req/s   p50 ${fmtMs(result.p50Ms, 3)} ms   p99 ${fmtMs(result.p99Ms, 3)} ms` +
            `${result.non2xx || result.errors ? `   non-2xx ${result.non2xx}  errors ${result.errors}` : ''}`,
        );
      } catch (error) {
        if (isStopping()) break;
        target.errors.push(`low load: ${message(error)}`);
        console.log(`${label}  ${target.name}: low-load measurement failed: ${message(error)}`);
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

  const lowLoadMedians = summarizeLowLoad(Object.fromEntries(lowLoadActive.map((t) => [t.name, t.lowLoad])));
  const lowLoad = { rate: options.rate, seconds: options.seconds, medians: lowLoadMedians };
  console.log('');
  console.log(
    `Low load (${fmtRps(options.rate)} req/s, ${options.seconds} s each, median of ${options.rounds} round(s); each request timed with hrtime; "added" = minus direct)`,
  );
  console.log(
    formatTable(
      ['target', 'p50 ms', 'p99 ms', 'p50 added ms', 'p99 added ms', 'req/s', 'non-2xx', 'errors'],
      LOW_LOAD_TARGETS.map((name) => {
        const s = lowLoadMedians[name];
        if (!s) return [name, '-', '-', '-', '-', '-', '-', '-'];
        const added = (v) => (name === 'direct' ? '' : fmtMs(v, 3));
        return [
          name,
          fmtMs(s.p50Ms, 3),
          fmtMs(s.p99Ms, 3),
          added(s.p50AddedMs),
          added(s.p99AddedMs),
          fmtRps(s.achievedRate),
          s.non2xx,
          s.errors,
        ];
      }),
    ),
  );

  const checks = evaluateChecks({
    sidecar: summaries['oauth-sidecar'],
    bareUndici: summaries['bare-undici'],
    httpProxy: summaries['http-proxy'],
    nginx: summaries.nginx,
    lowLoad,
    memory,
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
  if (memory?.peakSinceStart) console.log('memory: could not reset VmHWM, so the peak is since oauth-sidecar started');
  console.log(
    `store operations per proxied request: ${store?.perRequest ?? 'n/a'}` +
      (store ? ` (${store.operations} store operations over ${store.requests} proxied requests)` : ''),
  );
  if (upstreamStats) {
    for (const name of ['oauth-sidecar', 'bare-undici']) {
      const seen = upstreamStats.paths[name];
      if (targets[name].status !== 'ok') continue;
      console.log(
        `upstream via ${name}: ${seen.requests} requests, ${seen.missingBearer} without a Bearer token, ${seen.unknownToken} with a token the token endpoint never issued`,
      );
    }
    console.log(`token endpoint: ${upstreamStats.token.requests} request(s), ${upstreamStats.token.rejected} rejected`);
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
    options: { seconds: options.seconds, rounds: options.rounds, warmupSeconds: options.warmup, rate: options.rate },
    targets: Object.fromEntries(
      Object.values(targets).map((t) => [
        t.name,
        {
          status: t.status,
          note: t.note || undefined,
          url: t.url,
          median: summaries[t.name],
          rounds: t.rounds,
          lowLoad: LOW_LOAD_TARGETS.includes(t.name) ? { median: lowLoadMedians[t.name] ?? null, rounds: t.lowLoad } : undefined,
          errors: t.errors,
        },
      ]),
    ),
    memory,
    checks: checks.map(({ name, value, target, result }) => ({ name, value, target, result })),
    storeOperations: store,
    upstream: upstreamStats,
  };
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nJSON written to ${path.relative(process.cwd(), resultsFile) || resultsFile}`);

  clearTimeout(watchdog);
  const failed = Object.values(targets).some((t) => t.status === 'failed' || t.errors.length > 0) || Boolean(memory?.failed);
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
