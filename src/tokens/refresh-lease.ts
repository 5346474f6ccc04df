/**
 * The refresh lock as a lease: taken for a short time (auth.lockLeaseMs) and renewed every third of it
 * for as long as its holder works — the token request, the commit and any commit retries — so that a
 * holder that dies is replaced within one lease, whatever the token request's own timeout. Every renewal
 * is checked: a refused renewal means another replica may hold the lock, and a renewal that could not be
 * confirmed for a whole lease (the store is unreachable) means the same. The holder asks `held()` before
 * each step that needs exclusivity (writing the in-flight mark, sending the refresh token).
 */
import type { TokenStore } from '../store/token-store.js';
import type { Clock, Timer } from './clock.js';

export interface Lease {
  /** Still ours, as far as the last confirmed renewal says, and never lost since it was taken. No I/O. */
  held(): boolean;
  /** Stops renewing and releases the lock if it is still ours. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  readonly store: TokenStore;
  readonly key: string;
  readonly owner: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  /** Told once when the lease is found lost. */
  onLost?(why: string): void;
}

/** One attempt to take the lease; undefined when another owner holds it. Store errors propagate. */
export async function takeLease(options: LeaseOptions): Promise<Lease | undefined> {
  const { store, key, owner, ttlMs, clock } = options;
  const askedAt = clock.now();
  if (!(await store.acquireLock(key, owner, ttlMs))) return undefined;
  // Counted from when we asked, not when the answer came: the store started the TTL somewhere in between.
  let confirmedUntil = askedAt + ttlMs;
  let lost = false;
  let released = false;
  let timer: Timer | undefined;

  const markLost = (why: string): void => {
    if (lost) return;
    lost = true;
    options.onLost?.(why);
  };

  const renew = async (): Promise<void> => {
    const sentAt = clock.now();
    try {
      // A lease that lapsed while the store was unreachable may be free again: take it back if nobody else did.
      const ok = (await store.renewLock(key, owner, ttlMs)) || (await store.acquireLock(key, owner, ttlMs));
      if (ok) confirmedUntil = sentAt + ttlMs;
      else markLost('another replica holds the refresh lock');
    } catch {
      // Unconfirmed: held() turns false on its own once confirmedUntil passes.
    }
  };

  const schedule = (): void => {
    // Renewal goes on after a loss too (until release): a holder still retrying its commit takes the lock
    // back once it is free, so no other replica starts a refresh while that commit is outstanding.
    timer = clock.after(ttlMs / 3, () => {
      if (released) return;
      void renew().finally(() => {
        if (!released) schedule();
      });
    });
  };
  schedule();

  return {
    held() {
      if (!lost && clock.now() >= confirmedUntil) markLost('the refresh lock could not be renewed in time');
      return !lost;
    },
    async release() {
      released = true;
      timer?.cancel();
      await store.releaseLock(key, owner).catch(() => undefined);
    },
  };
}
