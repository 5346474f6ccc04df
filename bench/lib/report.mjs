/**
 * Turns per-round measurements into what the bench reports: the median of the rounds per target,
 * the PASS/MISS checks against the performance targets, and plain-text tables for the terminal.
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

/** The performance targets oauth-sidecar is held to. */
export function evaluateChecks({ sidecar, httpProxy, nginx, storeOpsPerRequest }) {
  const ratio = (a, b) => (a && b && a.rps > 0 && b.rps > 0 ? a.rps / b.rps : null);
  const check = (name, value, target, pass, format) => ({
    name,
    value,
    target,
    display: value === null ? 'n/a' : format(value),
    result: value === null ? 'n/a' : pass(value) ? 'PASS' : 'MISS',
  });
  return [
    check(
      'oauth-sidecar / http-proxy req/s',
      ratio(sidecar, httpProxy),
      '>= 1.8',
      (v) => v >= 1.8,
      (v) => `${v.toFixed(2)}x`,
    ),
    check(
      'oauth-sidecar / nginx req/s',
      ratio(sidecar, nginx),
      '>= 0.30',
      (v) => v >= 0.3,
      (v) => `${v.toFixed(2)}x`,
    ),
    check(
      'oauth-sidecar p99 latency',
      sidecar && Number.isFinite(sidecar.p99Ms) ? sidecar.p99Ms : null,
      '<= 5 ms',
      (v) => v <= 5,
      (v) => `${v.toFixed(2)} ms`,
    ),
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

export function fmtMs(value) {
  return Number.isFinite(value) ? value.toFixed(2) : '-';
}
