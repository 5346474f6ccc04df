/** Lets requests wait (bounded, on the injected clock) for the next change of a token manager's state. */
import type { Clock } from './clock.js';

export class ChangeSignal {
  readonly #clock: Clock;
  readonly #waiters = new Set<() => void>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Resolves at the next `notify`, or after `ms` if none comes. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        timer.cancel();
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = this.#clock.after(ms, wake);
      this.#waiters.add(wake);
    });
  }

  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
