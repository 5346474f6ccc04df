/**
 * Turns per-round measurements into what the bench reports: the median of the rounds per target
 * (under load and at a low fixed rate), the PASS/MISS checks against the performance targets, and
 * plain-text tables for the terminal.
 */

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Median of rps / p50 / p99 over the rounds. Non-2xx and errors are SUMMED over the rounds instead:
 * a median would hide a round that failed requests.
 */
export function summarize(rounds) {
  return {
    rps: median(rounds.map((r) => r.rps)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    non2xx: rounds.reduce((sum, r) => sum + (r.non2xx ?? 0), 0),
    errors: rounds.reduce((sum, r) => sum + (r.errors ?? 0), 0),
  };
}

/**
 * Low-load runs per round → medians of p50/p99, and the latency each adds over `direct` (the same
 * client against the upstream with no proxy): a proxy's own cost, with the client's and the
 * upstream's taken out.
 */
export function summarizeLowLoad(runsByTarget) {
  const medians = Object.fromEntries(
    Object.entries(runsByTarget)
      .filter(([, runs]) => runs.length > 0)
      .map(([name, runs]) => [
        name,
        {
          p50Ms: median(runs.map((r) => r.p50Ms)),
          p99Ms: median(runs.map((r) => r.p99Ms)),
          achievedRate: median(runs.map((r) => r.achievedRate)),
          non2xx: runs.reduce((sum, r) => sum + (r.non2xx ?? 0), 0),
          errors: runs.reduce((sum, r) => sum + (r.errors ?? 0), 0),
        },
      ]),
  );
  const direct = medians.direct;
  for (const summary of Object.values(medians)) {
    summary.p50AddedMs = direct ? summary.p50Ms - direct.p50Ms : NaN;
    summary.p99AddedMs = direct ? summary.p99Ms - direct.p99Ms : NaN;
  }
  return medians;
}

/**
 * The performance targets oauth-sidecar is held to. bare-undici is the same engine (node:http + an
 * undici Pool) with nothing else: the two ratios against it are the price of everything the sidecar
 * adds per request.
 */
export function evaluateChecks({ sidecar, bareUndici, httpProxy, nginx, lowLoad, memory, storeOpsPerRequest }) {
  const ratio = (a, b) => (a && b && a.rps > 0 && b.rps > 0 ? a.rps / b.rps : null);
  const finite = (value) => (Number.isFinite(value) ? value : null);
  const check = (name, value, target, pass, format) => ({
    name,
    value,
    target,
    display: value === null ? 'n/a' : format(value),
    result: value === null ? 'n/a' : pass(value) ? 'PASS' : 'MISS',
  });
  const times = (v) => `${v.toFixed(2)}x`;
  const ms = (digits) => (v) => `${v.toFixed(digits)} ms`;
  const mib = (v) => `${v.toFixed(1)} MiB`;
  return [
    check('oauth-sidecar / bare-undici req/s', ratio(sidecar, bareUndici), '>= 0.85', (v) => v >= 0.85, times),
    check(
      'oauth-sidecar / bare-undici p99',
      sidecar && bareUndici && bareUndici.p99Ms > 0 ? finite(sidecar.p99Ms / bareUndici.p99Ms) : null,
      '<= 1.2x',
      (v) => v <= 1.2,
      times,
    ),
    check('oauth-sidecar / http-proxy req/s', ratio(sidecar, httpProxy), '>= 1.8', (v) => v >= 1.8, times),
    check('oauth-sidecar / nginx req/s', ratio(sidecar, nginx), '>= 0.30', (v) => v >= 0.3, times),
    check('oauth-sidecar p99 latency', finite(sidecar?.p99Ms), '<= 5 ms', (v) => v <= 5, ms(2)),
    check(
      `oauth-sidecar p50 added at ${lowLoad?.rate ?? '?'} req/s`,
      finite(lowLoad?.medians['oauth-sidecar']?.p50AddedMs),
      '<= 0.3 ms',
      (v) => v <= 0.3,
      ms(3),
    ),
    check('oauth-sidecar RSS idle after warm-up', finite(memory?.idleMiB), '<= 70 MiB', (v) => v <= 70, mib),
    check(`oauth-sidecar peak RSS at c${memory?.connections ?? '?'}`, finite(memory?.peakMiB), '<= 150 MiB', (v) => v <= 150, mib),
    check(
      'store operations per proxied request',
      storeOpsPerRequest,
      '0',
      (v) => v === 0,
      (v) => (Number.isInteger(v) ? String(v) : v.toFixed(4)),
    ),
  ];
}

/** Numbers right-aligned; the first column and any listed in `leftColumns` (text) left-aligned. */
export function formatTable(headers, rows, leftColumns = []) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const left = new Set([0, ...leftColumns]);
  const line = (cells) =>
    cells
      .map((cell, i) => (left.has(i) ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('   '), ...rows.map(line)].join('\n');
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtRps(value) {
  return Number.isFinite(value) ? integer.format(value) : '-';
}

export function fmtMs(value, digits = 2) {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}
