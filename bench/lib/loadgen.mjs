/**
 * Runs one load-generator pass against a URL and returns the same shape whichever tool ran it:
 * { rps, p50Ms, p99Ms, non2xx, errors, requests }. runFixedRate is the low-load counterpart: a fixed
 * request rate timed to the microsecond by children/fixed-rate-client.mjs.
 *
 * wrk (C, one thread) is preferred: it needs far less CPU per request than a Node client, so on a
 * 2-core box the load core can drive the proxy harder. autocannon is the fallback, run in its own
 * child process (children/autocannon-worker.mjs). Either way the run is bounded by a kill timer.
 */
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, pinned } from './system.mjs';
import { startChild, stopChild } from './processes.mjs';

const autocannonWorker = fileURLToPath(new URL('../children/autocannon-worker.mjs', import.meta.url));
const fixedRateClient = fileURLToPath(new URL('../children/fixed-rate-client.mjs', import.meta.url));

/** Seconds of slack past the requested duration before a load run is considered hung and killed. */
const HANG_SLACK_SECONDS = 20;

/**
 * @param {{ tool: 'wrk' | 'autocannon', wrkPath: string | null, pinning: object, url: string, seconds: number, connections: number }} options
 */
export async function runLoad({ tool, wrkPath, pinning, url, seconds, connections }) {
  if (tool === 'wrk') {
    const stdout = await runToCompletion(
      'wrk',
      ...pinned(pinning, LOAD_CPU, wrkPath, ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url]),
      seconds,
    );
    return parseWrk(stdout);
  }
  const args = [autocannonWorker, JSON.stringify({ url, connections, seconds })];
  const stdout = await runToCompletion('autocannon', ...pinned(pinning, LOAD_CPU, process.execPath, args), seconds);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
}

/**
 * `rate` GETs per second for `seconds` (after `warmupSeconds` at the same rate), on the load core.
 * @returns {Promise<{ rate: number, achievedRate: number, requests: number, p50Ms: number, p90Ms: number, p99Ms: number, maxMs: number, non2xx: number, errors: number }>}
 */
export async function runFixedRate({ pinning, url, rate, seconds, warmupSeconds }) {
  const args = [fixedRateClient, JSON.stringify({ url, rate, seconds, warmupSeconds })];
  const stdout = await runToCompletion('fixed-rate client', ...pinned(pinning, LOAD_CPU, process.execPath, args), seconds + warmupSeconds);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
}

async function runToCompletion(name, command, args, seconds) {
  const record = startChild(name, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  record.child.stdout.on('data', (chunk) => (stdout += chunk));
  record.child.stderr.on('data', (chunk) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      void stopChild(record, 1000);
    },
    (seconds + HANG_SLACK_SECONDS) * 1000,
  );
  await record.done;
  clearTimeout(timer);
  await stopChild(record, 500);
  if (timedOut) throw new Error(`${name} did not finish within ${seconds + HANG_SLACK_SECONDS} s`);
  if (record.error) throw new Error(`${name}: ${record.error.message}`);
  if (record.exitCode !== 0) throw new Error(`${name} exited with ${record.exitCode ?? record.signal}: ${stderr.trim().slice(0, 500)}`);
  return stdout;
}

const wrkUnitsToMs = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function wrkDuration(text, percentile) {
  const match = text.match(new RegExp(`^\\s*${percentile}(?:\\.0+)?%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm'));
  return match ? Number(match[1]) * wrkUnitsToMs[match[2]] : NaN;
}

/**
 * Parses `wrk --latency` output. Note wrk's "Non-2xx or 3xx responses" counts statuses >= 400 (the
 * benchmark never sees 3xx, so that is the non-2xx count here). Socket errors are summed.
 */
export function parseWrk(text) {
  const rps = text.match(/^Requests\/sec:\s+([\d.]+)/m);
  if (!rps) throw new Error(`could not parse wrk output:\n${text}`);
  const socketErrors = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const requests = text.match(/^\s*(\d+) requests in /m);
  return {
    rps: Number(rps[1]),
    p50Ms: wrkDuration(text, 50),
    p99Ms: wrkDuration(text, 99),
    non2xx: Number(text.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0),
    errors: socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    requests: requests ? Number(requests[1]) : NaN,
  };
}
