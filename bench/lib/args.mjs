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
  };
}
