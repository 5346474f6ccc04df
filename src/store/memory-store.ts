/** Token store that lives and dies with the process: for tests and throwaway runs. */
import { parseTokenRecord } from './record-schema.js';
import { ChangeFeed, LockTable } from './lock-table.js';
import type { CompareAndSetResult, TokenRecord, TokenStore } from './token-store.js';

export function createMemoryStore(options: { now?: () => number } = {}): TokenStore {
  const records = new Map<string, TokenRecord>();
  const locks = new LockTable(options.now);
  const feed = new ChangeFeed();
  return {
    description: 'memory (lost on restart)',
    // Copies in and out, like every other store: a caller's later mutation never changes what is stored.
    // Checked like every store's reads, although only this process wrote it.
    read: async (key) => {
      const record = records.get(key);
      return record === undefined ? undefined : parseTokenRecord(structuredClone(record));
    },
    async compareAndSet(key, expectedGeneration, next): Promise<CompareAndSetResult> {
      if ((records.get(key)?.generation ?? 0) !== expectedGeneration) return 'stale';
      records.set(key, structuredClone(next));
      feed.publish(key, next.generation);
      return 'applied';
    },
    acquireLock: async (key, owner, ttlMs) => locks.acquire(key, owner, ttlMs),
    renewLock: async (key, owner, ttlMs) => locks.renew(key, owner, ttlMs),
    releaseLock: async (key, owner) => locks.release(key, owner),
    subscribe: (listener) => feed.subscribe(listener),
    close: async () => {},
  };
}
