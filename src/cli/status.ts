/**
 * `oauth-sidecar status`: each upstream's credential at a glance, from a running proxy's admin endpoint
 * or, when none answers, straight from the token store. Fingerprints only, never a token.
 */
import type { Config } from '../config/types.js';
import { createStore } from '../store/create-store.js';
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from '../tokens/fingerprint.js';
import type { TokenStatus } from '../tokens/token-status.js';
import { describeStore } from './check.js';

export interface StatusReport {
  readonly source: string;
  readonly upstreams: readonly Partial<TokenStatus>[];
}

/** From the admin endpoint when it answers (within 2 s), else from the store. */
export async function collectStatus(config: Config, adminUrl: string | undefined): Promise<StatusReport> {
  const url = adminUrl ?? (config.admin ? `http://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${config.admin.port}` : undefined);
  if (url) {
    const fromAdmin = await fetch(`${url.replace(/\/$/, '')}/status`, { signal: AbortSignal.timeout(2000) })
      .then(async (response) => (response.ok ? ((await response.json()) as { upstreams: TokenStatus[] }) : undefined))
      .catch(() => undefined);
    if (fromAdmin) return { source: `running proxy at ${url}`, upstreams: fromAdmin.upstreams };
    if (adminUrl) throw new Error(`no proxy answered at ${adminUrl}/status`);
  }
  if (config.store.type === 'memory') throw new Error('no running proxy answered, and the memory store can only be read inside the proxy');
  const store = await createStore(config.store);
  try {
    const upstreams = [];
    for (const upstream of config.upstreams) upstreams.push(fromRecord(upstream.name, await store.read(upstream.name), store.description));
    return { source: `token store (${describeStore(config.store)}); no running proxy answered`, upstreams };
  } finally {
    await store.close();
  }
}

function fromRecord(upstream: string, record: TokenRecord | undefined, store: string): Partial<TokenStatus> {
  const now = Date.now();
  const expiresInSeconds = record?.accessTokenExpiresAt ? Math.round((record.accessTokenExpiresAt - now) / 1000) : undefined;
  const state: TokenStatus['state'] = !record
    ? 'needs_credentials'
    : record.dead
      ? 'credential_dead'
      : expiresInSeconds !== undefined && expiresInSeconds > 0
        ? 'ok'
        : 'expired';
  return {
    upstream,
    state,
    reason: record?.dead?.reason ?? (record ? undefined : 'no record yet: seed a refresh token or run oauth-sidecar login'),
    generation: record?.generation ?? 0,
    accessTokenFingerprint: fingerprint(record?.accessToken),
    refreshTokenFingerprint: fingerprint(record?.refreshToken),
    expiresInSeconds,
    obtainedAt: record ? new Date(record.obtainedAt).toISOString() : undefined,
    store,
  };
}

export function formatStatusTable(report: StatusReport): string {
  const header = ['UPSTREAM', 'STATE', 'GEN', 'EXPIRES IN', 'LAST REFRESH', 'TOKEN', 'REASON'];
  const rows = report.upstreams.map((status) => [
    status.upstream ?? '',
    status.state ?? '',
    String(status.generation ?? 0),
    status.expiresInSeconds === undefined ? '-' : duration(status.expiresInSeconds),
    status.lastRefresh ? `${status.lastRefresh.outcome} ${status.lastRefresh.at} (${status.lastRefresh.latencyMs} ms)` : '-',
    status.accessTokenFingerprint ?? '-',
    status.reason ?? '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [`source: ${report.source}`, line(header), ...rows.map(line)].join('\n');
}

function duration(seconds: number): string {
  if (seconds <= 0) return 'expired';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
