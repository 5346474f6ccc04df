/** In-process refresh locks with expiry, shared by the stores that live in one process (memory, file). */
export class LockTable {
  readonly #locks = new Map<string, { owner: string; expiresAt: number }>();
  readonly #now: () => number;

  /** `now` is the clock the TTLs run on (tests pass a fake one). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  acquire(key: string, owner: string, ttlMs: number): boolean {
    const held = this.#locks.get(key);
    if (held && held.owner !== owner && held.expiresAt > this.#now()) return false;
    this.#locks.set(key, { owner, expiresAt: this.#now() + ttlMs });
    return true;
  }

  renew(key: string, owner: string, ttlMs: number): boolean {
    const held = this.#locks.get(key);
    if (!held || held.owner !== owner || held.expiresAt <= this.#now()) return false;
    held.expiresAt = this.#now() + ttlMs;
    return true;
  }

  release(key: string, owner: string): void {
    if (this.#locks.get(key)?.owner === owner) this.#locks.delete(key);
  }
}

/** Listener fan-out that isolates listeners from each other's exceptions. */
export class ChangeFeed {
  readonly #listeners = new Set<(key: string, generation: number) => void>();

  subscribe(listener: (key: string, generation: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(key: string, generation: number): void {
    for (const listener of this.#listeners) {
      try {
        listener(key, generation);
      } catch {
        // A listener's failure must not stop the others from hearing about the new record.
      }
    }
  }
}
