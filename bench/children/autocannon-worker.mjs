/**
 * Child process: one autocannon run (the load generator used when wrk is not installed). It runs in
 * its own process, pinned to the load core, so the load generator's event loop is never the one
 * being measured or shared with the orchestrator.
 *
 * Usage: node autocannon-worker.mjs '{"url":"http://…","connections":64,"seconds":10}'
 * Prints one JSON line: { rps, p50Ms, p99Ms, non2xx, errors, requests }.
 */
import autocannon from 'autocannon';

const { url, connections, seconds } = JSON.parse(process.argv[2] ?? '{}');

const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 });

process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors, // already includes timeouts
    requests: result.requests.total,
  })}\n`,
);
