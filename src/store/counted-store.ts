/** Wraps a store to count its operations, so that `store operations per proxied request` can be measured. */
import type { Counter } from 'prom-client';
import type { TokenStore } from './token-store.js';

export function countStoreOperations(store: TokenStore, counter: Counter<'operation'>): TokenStore {
  const count = (operation: string) => counter.inc({ operation });
  return {
    get description() {
      return store.description;
    },
    read: (key) => (count('read'), store.read(key)),
    compareAndSet: (key, expected, next) => (count('compare_and_set'), store.compareAndSet(key, expected, next)),
    acquireLock: (key, owner, ttl) => (count('acquire_lock'), store.acquireLock(key, owner, ttl)),
    renewLock: (key, owner, ttl) => (count('renew_lock'), store.renewLock(key, owner, ttl)),
    releaseLock: (key, owner) => (count('release_lock'), store.releaseLock(key, owner)),
    subscribe: (listener) => store.subscribe(listener),
    close: () => store.close(),
  };
}
