/**
 * Time as a dependency: every rule of the token core that depends on time (expiry, early refresh, the
 * lock lease, the in-flight mark, backoff, wait bounds) reads this clock and arms its timers, so unit
 * tests drive those rules with fake time in milliseconds instead of sleeping.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Runs `callback` after `ms`. Timers never keep the process alive. */
  after(ms: number, callback: () => void): Timer;
}

/** setTimeout cannot wait longer than this (2^31-1 ms, about 24.8 days); longer waits are re-armed. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, callback) {
    let handle: NodeJS.Timeout;
    const arm = (left: number): void => {
      handle = setTimeout(
        () => (left > MAX_TIMER_DELAY_MS ? arm(left - MAX_TIMER_DELAY_MS) : callback()),
        Math.min(Math.max(0, left), MAX_TIMER_DELAY_MS),
      );
      handle.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.after(ms, resolve));
}
