/** The `status` table: one row per upstream, columns sized to fit, nothing secret (fingerprints only). */
import type { StatusReport, UpstreamStatus } from './status.js';

const COLUMNS: readonly [title: string, cell: (status: UpstreamStatus, now: number) => string][] = [
  ['UPSTREAM', (status) => status.upstream],
  ['STATE', (status) => stateCell(status)],
  ['GEN', (status) => String(status.generation ?? 0)],
  [
    'EXPIRES IN',
    (status) =>
      status.expiresInSeconds === undefined ? '-' : status.expiresInSeconds <= 0 ? 'expired' : duration(status.expiresInSeconds),
  ],
  ['LAST REFRESH', lastRefreshCell],
  ['REFRESHES 1H', (status) => (status.lastHour ? withPart(status.lastHour.refreshes, status.lastHour.failedRefreshes, 'failed') : '-')],
  ['REPLAYS 1H', (status) => (status.lastHour ? withPart(status.lastHour.replays, status.lastHour.rejectedReplays, 'rejected') : '-')],
  ['TOKEN', (status) => status.accessTokenFingerprint ?? '-'],
  ['STORE', (status) => status.store ?? '-'],
  ['REASON', (status) => status.reason ?? ''],
];

export function formatStatusTable(report: StatusReport, now = Date.now()): string {
  const rows = report.upstreams.map((status) => COLUMNS.map(([, cell]) => oneLine(cell(status, now))));
  const header = COLUMNS.map(([title]) => title);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [`source: ${report.source}`, line(header), ...rows.map(line)].join('\n');
}

function stateCell(status: UpstreamStatus): string {
  const state = status.state.replace('_', ' ');
  // A refresh behind a still-valid token leaves the upstream ok; say so rather than hide it.
  return status.refreshing && status.state === 'ok' ? 'ok, refreshing' : state;
}

function lastRefreshCell(status: UpstreamStatus, now: number): string {
  const last = status.lastRefresh;
  if (last)
    return `${ago(Date.parse(last.at), now)} ${last.outcome.replace('_', ' ')}${last.outcome === 'adopted' ? '' : ` ${last.latencyMs} ms`}`;
  // Read from the store: when the current tokens were obtained is known, how long it took is not.
  if (status.obtainedAt) return `${ago(Date.parse(status.obtainedAt), now)} (stored)`;
  return '-';
}

function withPart(total: number, part: number, what: string): string {
  return part > 0 ? `${total} (${part} ${what})` : String(total);
}

function ago(at: number, now: number): string {
  return Number.isFinite(at) ? `${duration(Math.max(0, Math.round((now - at) / 1000)))} ago` : '?';
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** A reason quoted from a token endpoint could hold a newline or a terminal escape: a row stays one plain line. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}
