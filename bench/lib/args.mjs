/**
 * Command-line flags of `npm run bench -- …` (see bench/README.md). Flags win over environment
 * variables, which win over the defaults.
 */
import { parseArgs as parseNodeArgs } from 'node:util';

export const usage = `usage: node bench/run.mjs [options]

  --seconds N        measured duration per target per round (default 10, or $BENCH_SECONDS)
  --rounds N         interleaved rounds; the median is reported (default 3, or $BENCH_ROUNDS)
  --warmup N         warm-up seconds before each measurement (default 2)
  --connections N    concurrent keep-alive connections (default 64)
  --loadgen TOOL     auto | wrk | autocannon (default auto: wrk when installed)
  --rate N           requests/s of the low-load latency runs (default 200)
  --profile          instead of the comparison: one CPU-profiled run of oauth-sidecar under load,
                     then its top functions by self time (profile written to bench/results/)
  --help             this text`;

function positive(name, raw, fallback, { allowZero = false } = {}) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0))
    throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

export function parseArgs(argv, env) {
  const { values } = parseNodeArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      loadgen: { type: 'string' },
      rate: { type: 'string' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  const loadgen = values.loadgen ?? 'auto';
  if (!['auto', 'wrk', 'autocannon'].includes(loadgen)) throw new Error(`--loadgen must be auto, wrk or autocannon, got "${loadgen}"`);
  return {
    help: values.help ?? false,
    // wrk takes whole seconds.
    seconds: Math.max(1, Math.round(positive('--seconds', values.seconds ?? env.BENCH_SECONDS, 10))),
    rounds: Math.round(positive('--rounds', values.rounds ?? env.BENCH_ROUNDS, 3)),
    warmup: Math.round(positive('--warmup', values.warmup, 2, { allowZero: true })),
    connections: Math.round(positive('--connections', values.connections, 64)),
    loadgen,
    rate: positive('--rate', values.rate, 200),
    profile: values.profile ?? false,
  };
}
