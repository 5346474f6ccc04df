import { mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { takeFileLease } from '../../src/store/file-lease.js';
import { createFileStore } from '../../src/store/file-store.js';

function tokenFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-lease-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'tokens.json');
}

describe('the token file lease (one proxy per token file)', () => {
  it('keeps a second owner out while the first holds it, with a retryable error that says who holds it', async () => {
    const path = tokenFile();
    const first = await takeFileLease(path, { owner: 'a' });
    expect(statSync(`${path}.lease`).mode & 0o777).toBe(0o600);
    const refused = await takeFileLease(path, { owner: 'b' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StoreError);
    expect((refused as StoreError).retryable).toBe(true);
    expect((refused as StoreError).message).toMatch(
      new RegExp(`in use by another oauth-sidecar \\(pid ${process.pid} on .+, lease renewed 0 s ago\\); one proxy per token file`),
    );

    await first.release();
    const second = await takeFileLease(path, { owner: 'b' });
    expect(second.held()).toBe(true);
    await second.release();
  });

  it('is taken over once its holder stops renewing it, and the old holder then refreshes no more', async () => {
    const path = tokenFile();
    const frozen = await createFileStore(path, { lease: { owner: 'frozen', renewMs: 50 } });
    onTestFinished(() => frozen.close());
    expect(await frozen.acquireLock('apiax', 'frozen', 1000)).toBe(true);
    await frozen.releaseLock('apiax', 'frozen');

    // As if the holder had not renewed for a minute (a frozen VM): the lease is stale.
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lease`, longAgo, longAgo);
    const successor = await createFileStore(path, { lease: { owner: 'successor', renewMs: 50 } });
    onTestFinished(() => successor.close());
    expect(await successor.acquireLock('apiax', 'successor', 1000)).toBe(true);

    // The old holder's next renewal finds the lease gone to another owner: no more refresh locks for it.
    await new Promise((resolve) => setTimeout(resolve, 200)); // a few renewal periods
    expect(await frozen.acquireLock('other', 'frozen', 1000)).toBe(false);
    await frozen.close();
    // Closing does not remove a lease that is no longer its own.
    expect(statSync(`${path}.lease`).isFile()).toBe(true);
  });

  it('puts back a lease file deleted under it (nobody took it over)', async () => {
    const path = tokenFile();
    const lease = await takeFileLease(path, { owner: 'a', renewMs: 30 });
    rmSync(`${path}.lease`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(statSync(`${path}.lease`).isFile()).toBe(true);
    expect(lease.held()).toBe(true);
    const refused = await takeFileLease(path, { owner: 'b' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StoreError);
    await lease.release();
  });

  it('the same owner may take it again; a store without a lease (the CLI) never touches it', async () => {
    const path = tokenFile();
    const lease = await takeFileLease(path, { owner: 'a' });
    const again = await takeFileLease(path, { owner: 'a' });
    expect(again.held()).toBe(true);
    const cli = await createFileStore(path);
    expect(await cli.read('apiax')).toBeUndefined();
    await cli.close();
    expect(statSync(`${path}.lease`).isFile()).toBe(true);
    await again.release();
    await lease.release();
  });
});
