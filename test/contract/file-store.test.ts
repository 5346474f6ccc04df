import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { createFileStore, type FileStoreOptions } from '../../src/store/file-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { describeTokenStoreContract, tokenRecord } from './token-store.contract.js';

const KEY = 'collaborate';

/** A temp directory removed when the running test finishes. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-store-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A file store on `path`, closed when the running test finishes. */
async function openStore(path: string, options: FileStoreOptions = {}): Promise<TokenStore> {
  const store = await createFileStore(path, options);
  onTestFinished(() => store.close());
  return store;
}

describeTokenStoreContract('file', async () => createFileStore(join(tempDir(), 'tokens.json')));

describe('file store: durability and layout', () => {
  it('keeps records across a new store instance on the same path', async () => {
    const path = join(tempDir(), 'tokens.json');
    const first = await createFileStore(path);
    await first.compareAndSet(KEY, 0, tokenRecord(1));
    await first.compareAndSet(KEY, 1, tokenRecord(2, { refreshTokenExpiresAt: 1_900_000_000_000 }));
    await first.compareAndSet('apiax', 0, tokenRecord(1, { accessToken: 'apiax-1' }));
    await first.close();

    const second = await openStore(path);
    expect(await second.read(KEY)).toEqual(tokenRecord(2, { refreshTokenExpiresAt: 1_900_000_000_000 }));
    expect((await second.read('apiax'))?.accessToken).toBe('apiax-1');
    // The generation survives too: a writer that still believes in generation 1 is stale.
    expect(await second.compareAndSet(KEY, 1, tokenRecord(2, { accessToken: 'late' }))).toBe('stale');
  });

  it('creates missing directories and writes the file with mode 0600', async () => {
    const dir = tempDir();
    const path = join(dir, 'nested', 'state', 'tokens.json');
    const store = await openStore(path);
    expect(statSync(join(dir, 'nested', 'state')).isDirectory()).toBe(true);
    expect(statSync(join(dir, 'nested', 'state')).mode & 0o077).toBe(0);
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await store.compareAndSet(KEY, 1, tokenRecord(2));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('does not create the file until the first write', async () => {
    const dir = tempDir();
    const store = await openStore(join(dir, 'tokens.json'));
    expect(await store.read(KEY)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes atomically: readers never see a partial file, and no temp files are left behind', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokens.json');
    const store = await openStore(path);
    // Large records make a torn, in-place write easy to observe.
    const padding = 'x'.repeat(256 * 1024);
    await store.compareAndSet(KEY, 0, tokenRecord(1, { accessToken: `1-${padding}` }));
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        const text = await readFile(path, 'utf8');
        const parsed = JSON.parse(text) as { records: Record<string, { generation: number; accessToken: string }> };
        const current = parsed.records[KEY];
        expect(current?.accessToken).toBe(`${current?.generation}-${padding}`);
        reads += 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let generation = 2; generation <= 40; generation++) {
      expect(await store.compareAndSet(KEY, generation - 1, tokenRecord(generation, { accessToken: `${generation}-${padding}` }))).toBe(
        'applied',
      );
    }
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(readdirSync(dir)).toEqual(['tokens.json']);
  });

  it('stores the file as versioned JSON that names no more than the records', async () => {
    const path = join(tempDir(), 'tokens.json');
    const store = await openStore(path);
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, records: { [KEY]: tokenRecord(1) } });
  });
});

describe('file store: a second instance on the same file', () => {
  it('sees the other instance’s writes through a re-read in compareAndSet: an old generation is stale', async () => {
    const path = join(tempDir(), 'tokens.json');
    const a = await openStore(path);
    const b = await openStore(path);
    expect(await a.compareAndSet(KEY, 0, tokenRecord(1, { writer: 'a' }))).toBe('applied');
    // b has never seen generation 1, and must not overwrite it with its own "first" record.
    expect(await b.compareAndSet(KEY, 0, tokenRecord(1, { writer: 'b' }))).toBe('stale');
    expect(await b.read(KEY)).toEqual(tokenRecord(1, { writer: 'a' }));
    expect(await b.compareAndSet(KEY, 1, tokenRecord(2, { writer: 'b' }))).toBe('applied');
    // a refreshed from generation 1 as well and comes second: stale, and b's record stays.
    expect(await a.compareAndSet(KEY, 1, tokenRecord(2, { writer: 'a' }))).toBe('stale');
    expect(await a.read(KEY)).toEqual(tokenRecord(2, { writer: 'b' }));
  });

  it('keeps the other instance’s records of other keys when it writes', async () => {
    const path = join(tempDir(), 'tokens.json');
    const a = await openStore(path);
    const b = await openStore(path);
    await a.compareAndSet('one', 0, tokenRecord(1, { accessToken: 'from-a' }));
    await b.compareAndSet('two', 0, tokenRecord(1, { accessToken: 'from-b' }));
    const fresh = await openStore(path);
    expect((await fresh.read('one'))?.accessToken).toBe('from-a');
    expect((await fresh.read('two'))?.accessToken).toBe('from-b');
  });

  it('announces an external write to subscribers through the file watch', async () => {
    const path = join(tempDir(), 'tokens.json');
    const watcher = await openStore(path, { watchIntervalMs: 50 });
    const writer = await openStore(path, { watchIntervalMs: 50 });
    const events: [string, number][] = [];
    const unsubscribe = watcher.subscribe((key, generation) => events.push([key, generation]));
    onTestFinished(() => unsubscribe());

    // The file does not exist yet when the watch starts.
    await writer.compareAndSet(KEY, 0, tokenRecord(1));
    await vi.waitFor(() => expect(events).toEqual([[KEY, 1]]), { timeout: 5_000, interval: 20 });
    await sleep(60); // a distinct mtime for the next write
    await writer.compareAndSet(KEY, 1, tokenRecord(2));
    await writer.compareAndSet('apiax', 0, tokenRecord(1));
    await vi.waitFor(
      () =>
        expect(events).toEqual(
          expect.arrayContaining([
            [KEY, 2],
            ['apiax', 1],
          ]),
        ),
      { timeout: 5_000, interval: 20 },
    );
    expect(events.filter(([key]) => key === KEY).map(([, generation]) => generation)).toEqual([1, 2]);
  });

  it('stops watching on close', async () => {
    const path = join(tempDir(), 'tokens.json');
    const watcher = await createFileStore(path, { watchIntervalMs: 20 });
    const writer = await openStore(path);
    const events: number[] = [];
    watcher.subscribe((_key, generation) => events.push(generation));
    await watcher.close();
    await writer.compareAndSet(KEY, 0, tokenRecord(1));
    await sleep(200);
    expect(events).toEqual([]);
  });
});

describe('file store: a file it cannot understand', () => {
  for (const [label, contents] of [
    ['truncated JSON', '{"version":1,"records":{"collaborate":{"generation":3,"refreshToken":"only-copy'],
    ['not JSON at all', 'refresh_token=only-copy\n'],
    ['another version', '{"version":2,"records":{}}'],
    ['no records', '{"version":1}'],
    ['an empty file', ''],
  ] as const) {
    it(`${label}: createFileStore rejects with a clear message and leaves the file byte-identical`, async () => {
      const path = join(tempDir(), 'tokens.json');
      writeFileSync(path, contents, { mode: 0o600 });
      const before = readFileSync(path);
      const error = await createFileStore(path).then(
        (store) => {
          onTestFinished(() => store.close());
          throw new Error('createFileStore accepted a corrupt file');
        },
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(/not a valid oauth-sidecar token file/);
      expect((error as Error).message).not.toContain('only-copy');
      expect(readFileSync(path)).toEqual(before);
    });
  }

  it('refuses to write over a file that became corrupt after start, leaving it untouched', async () => {
    const path = join(tempDir(), 'tokens.json');
    const store = await openStore(path);
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    writeFileSync(path, '{"version":1,"records":');
    await expect(store.compareAndSet(KEY, 1, tokenRecord(2))).rejects.toBeInstanceOf(StoreError);
    expect(readFileSync(path, 'utf8')).toBe('{"version":1,"records":');
    // The queue of writes is not wedged by the failure: once the file is repaired, writes work again.
    writeFileSync(path, JSON.stringify({ version: 1, records: { [KEY]: tokenRecord(1) } }));
    expect(await store.compareAndSet(KEY, 1, tokenRecord(2))).toBe('applied');
  });

  it('refuses a record that does not fit the record schema (a hand edit, another program), naming it, and leaves the file untouched', async () => {
    const path = join(tempDir(), 'tokens.json');
    const store = await openStore(path);
    for (const broken of [
      { ...tokenRecord(1), generation: '1' },
      { ...tokenRecord(1), writer: undefined },
      { ...tokenRecord(1), source: 'guess' },
      { ...tokenRecord(1), accessToken: 42 },
      { ...tokenRecord(1), refreshInFlight: { since: 'yesterday' } },
    ]) {
      const text = JSON.stringify({ version: 1, records: { [KEY]: broken } });
      writeFileSync(path, text);
      const error = await store.read(KEY).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(broken)).toBeInstanceOf(StoreError);
      expect((error as Error).message).toContain(`record for ${KEY}`);
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  it('reports an unreadable token file as a StoreError naming the path', async () => {
    const dir = tempDir();
    const path = join(dir, 'tokens.json');
    // A directory where the file should be: unreadable as a file for any user, root included.
    mkdirSync(path);
    await expect(createFileStore(path)).rejects.toThrow(
      new RegExp(`cannot read token file ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: EISDIR`),
    );
  });
});
