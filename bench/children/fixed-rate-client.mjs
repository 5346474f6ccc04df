/**
 * Child process: latency at low load, to sub-millisecond precision. autocannon and wrk are built for
 * saturation (autocannon's histogram records whole milliseconds), so this client sends GETs at a fixed
 * rate over keep-alive undici connections and times each one with process.hrtime.bigint, from the moment
 * it is handed to undici until its body has been read. Requests are fired on schedule whether or not
 * the previous ones have come back (the pool opens another connection if one is still busy), so a slow
 * answer never delays the next request; the send time, not the scheduled time, starts the clock, so
 * timer jitter in this process is not counted as the target's latency.
 *
 * Usage: node fixed-rate-client.mjs '{"url":"http://…","rate":200,"seconds":10,"warmupSeconds":2}'
 * Prints one JSON line: { rate, achievedRate, requests, p50Ms, p90Ms, p99Ms, maxMs, non2xx, errors }.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

const { url, rate, seconds, warmupSeconds = 0 } = JSON.parse(process.argv[2] ?? '{}');
const { origin, pathname, search } = new URL(url);
const path = pathname + search;
const pool = new Pool(origin, { connections: 16, keepAliveTimeout: 30_000 });

/** Sends at `rate` per second for `durationS`; returns the latencies (ns) of 2xx answers and the failures. */
async function runAt(durationS) {
  const latencies = [];
  let non2xx = 0;
  let errors = 0;
  const inFlight = new Set();
  const intervalNs = BigInt(Math.round(1e9 / rate));
  const start = process.hrtime.bigint();
  const total = Math.round(rate * durationS);
  for (let sent = 0; sent < total;) {
    // Fire every request that is due (catching up after a late timer), then sleep until the next one.
    while (sent < total && process.hrtime.bigint() >= start + BigInt(sent) * intervalNs) {
      sent += 1;
      const begin = process.hrtime.bigint();
      const request = pool
        .request({ method: 'GET', path })
        .then(async ({ statusCode, body }) => {
          await body.dump();
          if (statusCode >= 200 && statusCode < 300) latencies.push(process.hrtime.bigint() - begin);
          else non2xx += 1;
        })
        .catch(() => (errors += 1))
        .finally(() => inFlight.delete(request));
      inFlight.add(request);
    }
    const nextNs = start + BigInt(sent) * intervalNs - process.hrtime.bigint();
    if (nextNs > 0n) await sleep(Number(nextNs / 1_000_000n));
  }
  await Promise.all(inFlight);
  return { latencies, non2xx, errors, elapsedS: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Nearest-rank percentile of sorted nanoseconds, in milliseconds. */
function percentileMs(sorted, p) {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Number(sorted[index]) / 1e6;
}

if (warmupSeconds > 0) await runAt(warmupSeconds);
const { latencies, non2xx, errors, elapsedS } = await runAt(seconds);
latencies.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
await pool.close();

process.stdout.write(
  `${JSON.stringify({
    rate,
    achievedRate: (latencies.length + non2xx + errors) / elapsedS,
    requests: latencies.length + non2xx + errors,
    p50Ms: percentileMs(latencies, 50),
    p90Ms: percentileMs(latencies, 90),
    p99Ms: percentileMs(latencies, 99),
    maxMs: percentileMs(latencies, 100),
    non2xx,
    errors,
  })}\n`,
);
