/**
 * One replica's link to a shared store (a real memory store), which a test can stall or cut, as a TCP
 * link to Redis can be. While stalled, operations hang and fail after `commandTimeoutMs` of fake time
 * without reaching the store (like a command that never left the client); change announcements are held
 * and delivered as one "re-read everything" when the link comes back, as the Redis store does after a
 * reconnect. Process-level tests do the same with real redis-server processes and a TCP relay.
 */
import { StoreError } from '../../src/errors.js';
import type { RecordChangeListener, TokenStore } from '../../src/store/token-store.js';
import type { FakeClock } from './fake-clock.js';

export interface StoreLink extends TokenStore {
  stall(): void;
  restore(): void;
  readonly stalled: boolean;
}

export function linkTo(shared: TokenStore, clock: FakeClock, name: string, commandTimeoutMs = 500): StoreLink {
  let stalled = false;
  let missedChanges = false;
  const listeners = new Set<RecordChangeListener>();
  shared.subscribe((key, generation) => {
    if (stalled) missedChanges = true;
    else for (const listener of listeners) listener(key, generation);
  });

  const through = <T>(work: () => Promise<T>): Promise<T> => {
    if (!stalled) return work();
    return new Promise((_resolve, reject) =>
      clock.after(commandTimeoutMs, () => reject(new StoreError(`${name}: command timed out (link stalled)`, { retryable: true }))),
    );
  };

  return {
    description: `${name} link to a shared memory store`,
    get stalled() {
      return stalled;
    },
    stall() {
      stalled = true;
    },
    restore() {
      stalled = false;
      if (missedChanges) {
        missedChanges = false;
        for (const listener of listeners) listener('*', -1);
      }
    },
    read: (key) => through(() => shared.read(key)),
    compareAndSet: (key, expected, next) => through(() => shared.compareAndSet(key, expected, next)),
    acquireLock: (key, owner, ttl) => through(() => shared.acquireLock(key, owner, ttl)),
    renewLock: (key, owner, ttl) => through(() => shared.renewLock(key, owner, ttl)),
    releaseLock: (key, owner) => through(() => shared.releaseLock(key, owner)),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {},
  };
}
