import type { RecordedRequest } from './types.js';

/** What happens to a token request once the gate lets go of it. */
export type GateVerdict = 'process' | 'discard';

/**
 * Holds token requests after they arrived and before the provider looks at them, until the test says
 * whether they go on (processed: the refresh token they carry is spent, and the answer is sent even if
 * the client has gone) or are dropped unprocessed (the connection is destroyed, nothing is spent). The
 * arrival callback runs at the moment the request is in, so a test can break something else (stall a
 * replica's link to Redis) exactly between "the refresh token was sent" and "the answer came back".
 */
export class TokenRequestGate {
  #holding = false;
  #arrivals = 0;
  #onArrival: ((req: RecordedRequest) => void) | undefined;
  #held: ((verdict: GateVerdict) => void)[] = [];
  #arrivalWaiters: { count: number; resolve: () => void }[] = [];

  /** From now on requests are held; counting of arrivals starts again at 0. */
  hold(onArrival?: (req: RecordedRequest) => void): void {
    this.#holding = true;
    this.#arrivals = 0;
    this.#onArrival = onArrival;
  }

  arrivals(): number {
    return this.#arrivals;
  }

  /** Resolves once `count` requests have arrived since hold(); rejects after `timeoutMs`. */
  waitForArrivals(count: number, timeoutMs: number): Promise<void> {
    if (this.#arrivals >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { count, resolve: () => {} };
      const timer = setTimeout(() => {
        this.#arrivalWaiters = this.#arrivalWaiters.filter((w) => w !== waiter);
        reject(new Error(`fake provider: ${this.#arrivals} of ${count} token requests arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#arrivalWaiters.push(waiter);
    });
  }

  /** Called by the token endpoint for every request; resolves at once unless holding. */
  enter(req: RecordedRequest): Promise<GateVerdict> {
    if (!this.#holding) return Promise.resolve('process');
    this.#arrivals++;
    this.#onArrival?.(req);
    for (const waiter of this.#arrivalWaiters.filter((w) => w.count <= this.#arrivals)) waiter.resolve();
    this.#arrivalWaiters = this.#arrivalWaiters.filter((w) => w.count > this.#arrivals);
    return new Promise((resolve) => this.#held.push(resolve));
  }

  /** Stops holding and lets every held request go on with `verdict`. */
  open(verdict: GateVerdict): void {
    this.#holding = false;
    this.#onArrival = undefined;
    const held = this.#held;
    this.#held = [];
    for (const resolve of held) resolve(verdict);
  }
}
