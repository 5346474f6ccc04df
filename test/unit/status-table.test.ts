import { describe, expect, it } from 'vitest';
import type { StatusReport, UpstreamStatus } from '../../src/cli/status.js';
import { formatStatusTable } from '../../src/cli/status-table.js';

const now = Date.parse('2026-11-22T10:00:00Z');

function table(...upstreams: UpstreamStatus[]): string[] {
  const report: StatusReport = { source: 'running proxy at http://127.0.0.1:9901', upstreams };
  return formatStatusTable(report, now).split('\n');
}

/** The cells of a row, split on the two-space column gap (no cell here holds two spaces). */
function cells(line: string | undefined): string[] {
  return (line ?? '').split(/ {2,}/);
}

const fromProxy: UpstreamStatus = {
  upstream: 'apiax',
  state: 'ok',
  generation: 7,
  expiresInSeconds: 290,
  accessTokenFingerprint: '0a1b2c3d',
  refreshing: false,
  lastRefresh: { at: '2026-11-22T09:59:48Z', outcome: 'success', reason: 'rejected', latencyMs: 84 },
  lastHour: { refreshes: 4, failedRefreshes: 1, replays: 3, rejectedReplays: 0 },
  store: 'redis redis://127.0.0.1:6379, prefix "oauth-sidecar"',
};

describe('the status table', () => {
  it('has a column for each thing the operator asked for', () => {
    const [source, header, row] = table(fromProxy);
    expect(source).toBe('source: running proxy at http://127.0.0.1:9901');
    expect(cells(header)).toEqual([
      'UPSTREAM',
      'STATE',
      'GEN',
      'EXPIRES IN',
      'LAST REFRESH',
      'REFRESHES 1H',
      'REPLAYS 1H',
      'TOKEN',
      'STORE',
      'REASON',
    ]);
    expect(cells(row)).toEqual([
      'apiax',
      'ok',
      '7',
      '5m',
      '12s ago success 84 ms',
      '4 (1 failed)',
      '3',
      '0a1b2c3d',
      'redis redis://127.0.0.1:6379, prefix "oauth-sidecar"',
    ]);
  });

  it('lines the columns up whatever the cell widths', () => {
    const lines = table(fromProxy, { ...fromProxy, upstream: 'collaborate', generation: 12345 });
    const starts = lines
      .slice(1)
      .map((line) => (line.indexOf('REFRESHES 1H') >= 0 ? line.indexOf('REFRESHES 1H') : line.indexOf('4 (1 failed)')));
    expect(new Set(starts).size).toBe(1);
  });

  it('shows a refresh behind a valid token, and the states in words', () => {
    expect(cells(table({ ...fromProxy, refreshing: true })[2])[1]).toBe('ok, refreshing');
    const dead = table({
      upstream: 'v3',
      state: 'credential_dead',
      reason: 'refresh token spent (invalid_grant)',
      generation: 3,
      store: 'file /data/tokens.json',
    })[2];
    expect(cells(dead)).toEqual([
      'v3',
      'credential dead',
      '3',
      '-',
      '-',
      '-',
      '-',
      '-',
      'file /data/tokens.json',
      'refresh token spent (invalid_grant)',
    ]);
    expect(cells(table({ upstream: 'v3', state: 'needs_credentials' })[2])[1]).toBe('needs credentials');
  });

  it('read from the store: when the tokens were obtained, no latency and no counts', () => {
    const row = table({
      upstream: 'apiax',
      state: 'ok',
      generation: 2,
      expiresInSeconds: 3000,
      obtainedAt: '2026-11-22T09:58:00Z',
      store: 'file /data/tokens.json',
    })[2];
    expect(cells(row)).toEqual(['apiax', 'ok', '2', '50m', '2m ago (stored)', '-', '-', '-', 'file /data/tokens.json']);
  });

  it('keeps a hostile reason on one line and free of terminal escapes', () => {
    const lines = table({ ...fromProxy, state: 'expired', reason: 'bad\n\x1b[2Jgrant\r\x07' });
    expect(lines).toHaveLength(3);
    // eslint-disable-next-line no-control-regex -- looking for control characters is the point
    expect(lines[2]).not.toMatch(/[\x00-\x1f]/);
    expect(lines[2]).toContain('bad [2Jgrant');
  });
});
