/**
 * A token manager's first read of its record (seeding it where that applies), retried while the store is
 * unreachable: 250 ms backing off to 5 s, and at once when the store announces itself. Until it succeeds
 * the credential is unready, and `problem` says why.
 */
import { StoreError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TokenRecord } from '../store/token-store.js';
import type { Clock, Timer } from './clock.js';
import { loadOrSeed } from './load-record.js';
import type { RefreshDeps } from './refresh-procedure.js';
import { backoffDelay } from './refresh-schedule.js';

/** A store that could not be read is tried again at least this often (and at once when it announces itself). */
const MAX_RETRY_MS = 5000;

export interface FirstReadOptions {
  readonly deps: Pick<RefreshDeps, 'name' | 'store' | 'owner' | 'log' | 'clock'>;
  readonly seed: string | undefined;
  readonly random: () => number;
  /** The record is read (or seeded); called once. */
  onRead(record: TokenRecord | undefined): void;
  /** The problem changed (for waiters and the status). */
  onProblem(): void;
}

export class FirstRead {
  readonly #options: FirstReadOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  #running: Promise<void> | undefined;
  #retry: Timer | undefined;
  #failures = 0;
  #done = false;
  #problem: string | undefined;

  constructor(options: FirstReadOptions) {
    this.#options = options;
    this.#log = options.deps.log;
    this.#clock = options.deps.clock;
  }

  /** Why the record cannot be read yet, if so. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /**
   * Reads now (single-flight). At start-up, a store that answers wrongly (a corrupt file, a record that does
   * not decrypt) rejects; one that is merely unreachable is retried in the background.
   */
  run(options: { atStart?: boolean } = {}): Promise<void> {
    this.#running ??= this.#attempt(options.atStart ?? false).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    this.#done = true;
    this.#retry?.cancel();
  }

  async #attempt(atStart: boolean): Promise<void> {
    if (this.#done) return;
    this.#retry?.cancel();
    const { deps } = this.#options;
    try {
      const record = await loadOrSeed(deps, this.#options.seed);
      if (this.#done) return;
      if (this.#problem) this.#log.info({ event: 'store_read_recovered' }, `token store readable again; upstream ${deps.name} starts`);
      this.#problem = undefined;
      this.#done = true;
      this.#options.onRead(record);
    } catch (error) {
      if (atStart && !(error instanceof StoreError && error.retryable)) throw error;
      this.#failures += 1;
      const problem = `token store unavailable: ${error instanceof Error ? error.message : String(error)}`;
      const retryInMs = Math.round(Math.min(backoffDelay(this.#failures, undefined, this.#options.random), MAX_RETRY_MS));
      if (problem !== this.#problem)
        this.#log.warn({ event: 'store_read_failed', retryInMs }, `${problem}; upstream ${deps.name} is not ready until it can be read`);
      this.#problem = problem;
      this.#options.onProblem();
      if (!this.#done) this.#retry = this.#clock.after(retryInMs, () => void this.run());
    }
  }
}
