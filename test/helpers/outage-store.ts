/**
 * A real memory store behind a switch that makes every operation fail, as an unreachable shared store
 * does. It tests the token manager's outage policy; the Redis store's own fault behaviour is tested
 * against real redis-server processes (test/integration/redis-faults.test.ts).
 */
import { StoreError } from '../../src/errors.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import type { TokenStore } from '../../src/store/token-store.js';

export interface OutageStore extends TokenStore {
  down: boolean;
  readonly inner: TokenStore;
}

export function createOutageStore(): OutageStore {
  const inner = createMemoryStore();
  const state = { down: false };
  const guard = <T>(work: () => Promise<T>): Promise<T> =>
    state.down ? Promise.reject(new StoreError('store unreachable (test outage)')) : work();
  return {
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    inner,
    description: 'outage test store',
    read: (key) => guard(() => inner.read(key)),
    compareAndSet: (key, expected, next) => guard(() => inner.compareAndSet(key, expected, next)),
    acquireLock: (key, owner, ttl) => guard(() => inner.acquireLock(key, owner, ttl)),
    renewLock: (key, owner, ttl) => guard(() => inner.renewLock(key, owner, ttl)),
    releaseLock: (key, owner) => guard(() => inner.releaseLock(key, owner)),
    subscribe: (listener) => inner.subscribe(listener),
    close: () => inner.close(),
  };
}
