/**
 * Durable token store for one replica: one JSON file holding a record per credential.
 *
 * Every write is atomic and durable before it is acknowledged (temp file created 0600, fsync, rename,
 * fsync of the directory), so a crash at any instant leaves either the old or the new record on disk,
 * never a torn file and never a lost rotated refresh token. Compare-and-set re-reads the file, so a
 * record written by another process (the `seed` command) is never overwritten with an older one; the
 * file is also watched so that the running proxy adopts such a record.
 */
import { parseTokenRecord } from './record-schema.js';
import { randomBytes } from 'node:crypto';
import { watchFile, unwatchFile, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StoreError } from '../errors.js';
import { takeFileLease, type FileLeaseOptions } from './file-lease.js';
import { ChangeFeed, LockTable } from './lock-table.js';
import type { CompareAndSetResult, TokenRecord, TokenStore } from './token-store.js';

interface FileContents {
  version: 1;
  records: Record<string, TokenRecord>;
}

export interface FileStoreOptions {
  /** How often the file is polled for changes made by other processes. */
  watchIntervalMs?: number;
  /** Hold the file's lease (`serve`): another proxy on the same file cannot open it meanwhile. See file-lease.ts. */
  lease?: FileLeaseOptions;
}

export async function createFileStore(path: string, options: FileStoreOptions = {}): Promise<TokenStore> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const lease = options.lease ? await takeFileLease(path, options.lease) : undefined;
  let known: Map<string, number>;
  try {
    known = generationsOf(await readContents(path)); // fails start-up on a corrupt file
  } catch (error) {
    await lease?.release();
    throw error;
  }
  const locks = new LockTable();
  const feed = new ChangeFeed();
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs file updates one after another, so two writers in this process never race on the temp file. */
  function serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  function announceChanges(contents: FileContents): void {
    const now = generationsOf(contents);
    for (const [key, generation] of now) if (known.get(key) !== generation) feed.publish(key, generation);
    known = now;
  }

  const onFileChange = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
    readContents(path).then(announceChanges, () => {
      // A half-visible write by another process; the next poll sees the finished file.
    });
  };
  watchFile(path, { interval: options.watchIntervalMs ?? 1000, persistent: false }, onFileChange);

  return {
    description: `file ${path}`,
    read: async (key) => validRecord((await readContents(path)).records[key], key, path),
    compareAndSet(key, expectedGeneration, next): Promise<CompareAndSetResult> {
      return serialized(async () => {
        const contents = await readContents(path);
        if ((contents.records[key]?.generation ?? 0) !== expectedGeneration) return 'stale';
        contents.records[key] = next;
        await writeAtomically(path, `${JSON.stringify(contents, null, 2)}\n`);
        announceChanges(contents);
        return 'applied';
      });
    },
    // A lease taken over by another proxy (this one was frozen past its staleness) means no more refreshes here.
    acquireLock: async (key, owner, ttlMs) => (lease && !lease.held() ? false : locks.acquire(key, owner, ttlMs)),
    renewLock: async (key, owner, ttlMs) => locks.renew(key, owner, ttlMs),
    releaseLock: async (key, owner) => locks.release(key, owner),
    subscribe: (listener) => feed.subscribe(listener),
    async close() {
      unwatchFile(path, onFileChange);
      await queue;
      await lease?.release();
    },
  };
}

/** A record that does not fit the schema is reported, never used, and left in the file untouched. */
function validRecord(value: unknown, key: string, path: string): TokenRecord | undefined {
  if (value === undefined) return undefined;
  const record = parseTokenRecord(value);
  if (!record)
    throw new StoreError(`token file ${path} holds a record for ${key} that is not a valid oauth-sidecar record; it is left untouched`);
  return record;
}

async function readContents(path: string): Promise<FileContents> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, records: {} };
    throw new StoreError(`cannot read token file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  const parsed = parseJson(text) as Partial<FileContents> | null | undefined;
  if (parsed?.version !== 1 || typeof parsed.records !== 'object' || parsed.records === null) {
    // Never overwrite a file we cannot understand: it may hold the only copy of a rotated refresh token.
    throw new StoreError(`token file ${path} is not a valid oauth-sidecar token file; move it aside or fix it, it is left untouched`);
  }
  return { version: 1, records: parsed.records };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new StoreError(`cannot write token file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  // The rename is durable only once the directory entry is on disk.
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

function generationsOf(contents: FileContents): Map<string, number> {
  return new Map(Object.entries(contents.records).map(([key, record]) => [key, record.generation]));
}
