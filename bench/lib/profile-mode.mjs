/**
 * `npm run bench -- --profile`: where does oauth-sidecar spend its CPU under load? Starts the upstream
 * and oauth-sidecar under `node --cpu-prof`, loads it for one round (--connections, --seconds, after the
 * warm-up), stops it with SIGTERM (it drains and exits; Node writes the profile on the way out), then
 * prints the functions with the most self time and the same time by area (the sidecar's code, each
 * dependency, Node internals, GC). The profile file covers the process's whole life; the report
 * counts only the samples taken during the measured load (not start-up, warm-up or drain).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { summarizeCpuProfile } from './cpu-profile.mjs';
import { runLoad } from './loadgen.mjs';
import { httpGet } from './net.mjs';
import { stopChild } from './processes.mjs';
import { fmtMs, fmtRps, formatTable } from './report.mjs';
import { startSidecar, startUpstream } from './targets.mjs';

const TOP_FUNCTIONS = 20;
/** Draining, then serializing a profile of a few hundred thousand samples, takes a few seconds at most. */
const EXIT_GRACE_MS = 30_000;

/** @returns {Promise<number>} the exit code */
export async function runProfile({ options, tool, wrkPath, pinning, tmp, resultsDir }) {
  mkdirSync(resultsDir, { recursive: true });
  const profileName = `oauth-sidecar-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  const profileFile = path.join(resultsDir, profileName);

  const upstream = await startUpstream(pinning);
  const sidecar = await startSidecar(tmp, upstream.port, pinning, {
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resultsDir}`, `--cpu-prof-name=${profileName}`],
  });
  const smoke = await httpGet(sidecar.url, 5000);
  if (smoke.status !== 200) throw new Error(`GET ${sidecar.url} answered ${smoke.status}: ${smoke.body.slice(0, 300)}`);

  const load = { tool, wrkPath, pinning, url: sidecar.url, connections: options.connections };
  if (options.warmup > 0) await runLoad({ ...load, seconds: options.warmup });
  const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
  const window = { fromUs: monotonicUs() };
  const result = await runLoad({ ...load, seconds: options.seconds });
  window.toUs = monotonicUs();
  console.log(
    `profiled run  oauth-sidecar  ${fmtRps(result.rps)} req/s   p50 ${fmtMs(result.p50Ms)} ms   p99 ${fmtMs(result.p99Ms)} ms` +
      `   non-2xx ${result.non2xx}  errors ${result.errors}   (${options.connections} connections, ${options.seconds} s; the profiler slows it)`,
  );

  await stopChild(sidecar.record, EXIT_GRACE_MS);
  const { exitCode, signal } = sidecar.record;
  if (exitCode !== 0) console.log(`oauth-sidecar: did not exit cleanly on SIGTERM (${exitCode ?? signal}); the profile may be missing`);
  if (!existsSync(profileFile)) throw new Error(`no CPU profile at ${profileFile} (oauth-sidecar exit: ${exitCode ?? signal})`);

  const profile = summarizeCpuProfile(profileFile, window);
  const share = (ms) => `${((100 * ms) / profile.busyMs).toFixed(1)}%`;
  console.log('');
  console.log(
    `CPU profile${profile.windowed ? ' of the measured load' : ' (whole process: the load window did not match its clock)'}: ` +
      `${(profile.totalMs / 1000).toFixed(1)} s sampled, ${(profile.busyMs / 1000).toFixed(1)} s busy ` +
      `(${(profile.idleMs / 1000).toFixed(1)} s idle left out); percentages are of busy time`,
  );
  console.log('');
  console.log(`Top ${TOP_FUNCTIONS} functions by self time`);
  console.log(
    formatTable(
      ['function', 'self ms', 'self %', 'where'],
      profile.functions.slice(0, TOP_FUNCTIONS).map((f) => [f.name, f.selfMs.toFixed(0), share(f.selfMs), f.location || f.area]),
      [3],
    ),
  );
  console.log('');
  console.log('Self time by area');
  console.log(
    formatTable(
      ['area', 'self ms', 'self %'],
      profile.areas.slice(0, 12).map((a) => [a.area, a.selfMs.toFixed(0), share(a.selfMs)]),
    ),
  );
  console.log('');
  console.log(`Profile written to ${path.relative(process.cwd(), profileFile) || profileFile} (open it in Chrome DevTools or VS Code)`);
  return exitCode === 0 ? 0 : 1;
}
