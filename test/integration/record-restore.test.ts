/**
 * A store that lost data (a backup put back, a Redis restarted without persistence, a failover to a
 * lagging replica) can hold an older record than a running proxy. Generations only grow, so the proxy's
 * newer copy holds the only unspent refresh token: it is written back, and the next refresh uses it
 * instead of the spent one in the old record (which would kill a one-time credential).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { waitUntil } from '../helpers/proxy-process.js';
import { fileTop, setup, statusOf } from './token-fixtures.js';

function storedGeneration(path: string, upstream: string): number {
  const contents = JSON.parse(readFileSync(path, 'utf8')) as { records: Record<string, { generation: number }> };
  return contents.records[upstream]?.generation ?? 0;
}

describe('a store that went back in time', () => {
  it('gets the newer record written back at once, and the next refresh spends the live refresh token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-restore-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'tokens.json');
    const { fake, proxy, call } = await setup('v3', { top: fileTop(path) });
    expect((await call('/a')).status).toBe(200);
    const backup = readFileSync(path); // generation 2
    fake.expireAccessTokens();
    expect((await call('/b')).status).toBe(200); // refreshed: generation 3; generation 2's refresh token is spent
    expect(storedGeneration(path, 'v3')).toBe(3);
    // The replay of /b was accepted, so the proxy also removes the "fetched after a rejection" mark from the
    // record: let that write land first, or it could race the restore below.
    await waitUntil('the record to be marked trusted', () => !readFileSync(path, 'utf8').includes('fetchedAfterRejection'), 5_000);

    // Someone restores yesterday's backup (atomically, as the store itself writes).
    writeFileSync(`${path}.restore`, backup, { mode: 0o600 });
    renameSync(`${path}.restore`, path);
    await waitUntil('the proxy to write its newer record back', () => storedGeneration(path, 'v3') === 3, 5_000);
    await waitUntil('the restore to be logged', () => proxy.logs.some((line) => line.event === 'record_restored'), 2_000);
    expect(proxy.logs.find((line) => line.event === 'record_restored')).toMatchObject({ generation: 3, replacedGeneration: 2 });

    const callsBefore = fake.counters.tokenCalls;
    fake.expireAccessTokens();
    expect((await call('/c')).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(callsBefore + 1);
    expect(fake.counters.invalidGrants).toBe(0);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect((await statusOf(proxy, 'v3')).generation).toBe(4);
  });
});
