/**
 * A Clock whose time moves only when a test says so. `advance(ms)` fires every timer due in that span in
 * time order, letting promise chains (the memory store, the token manager) settle after each one, so a
 * rule that depends on time is tested to the millisecond without sleeping.
 */
import type { Clock, Timer } from '../../src/tokens/clock.js';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers: Pending[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, callback: () => void): Timer {
    const timer: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#nextDue(target);
      if (!next) break;
      this.#now = next.at;
      next.cancelled = true;
      next.callback();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Advances in steps until `check()` holds or `maxMs` passed; returns the time it took. */
  async advanceUntil(check: () => boolean, maxMs: number, stepMs = 10): Promise<number> {
    const start = this.#now;
    while (!check()) {
      if (this.#now - start >= maxMs) throw new Error(`condition not met within ${maxMs} ms of fake time`);
      await this.advance(stepMs);
    }
    return this.#now - start;
  }

  #nextDue(target: number): Pending | undefined {
    let best: Pending | undefined;
    for (const timer of this.#timers) {
      if (timer.cancelled || timer.at > target) continue;
      if (!best || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq)) best = timer;
    }
    // Fired and cancelled timers are dropped now and then, so long tests stay fast.
    if (this.#timers.length > 1000) this.#timers.splice(0, this.#timers.length, ...this.#timers.filter((timer) => !timer.cancelled));
    return best;
  }
}

/** Lets pending promise callbacks and I/O-free async chains run to completion. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}
