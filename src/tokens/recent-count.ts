/**
 * Counts events over a sliding window (by default the last hour) in fixed buckets, so that adding is
 * O(1) and memory stays a few dozen numbers however busy the upstream is. A bucket is reused once its
 * slot comes round again, which is when its events leave the window: the count is exact to one bucket
 * (a minute, by default).
 */
export class RecentCount {
  readonly #bucketMs: number;
  readonly #counts: number[];
  /** Which bucket (epoch ms / bucketMs) each slot currently holds. */
  readonly #slots: number[];

  constructor(windowMs = 3_600_000, bucketMs = 60_000) {
    const buckets = Math.max(1, Math.ceil(windowMs / bucketMs));
    this.#bucketMs = bucketMs;
    this.#counts = new Array<number>(buckets).fill(0);
    this.#slots = new Array<number>(buckets).fill(-1);
  }

  add(now = Date.now()): void {
    const bucket = Math.floor(now / this.#bucketMs);
    const slot = bucket % this.#counts.length;
    if (this.#slots[slot] !== bucket) {
      this.#slots[slot] = bucket;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] = (this.#counts[slot] ?? 0) + 1;
  }

  /** Events in the window that ends now. */
  total(now = Date.now()): number {
    const newest = Math.floor(now / this.#bucketMs);
    const oldest = newest - this.#counts.length + 1;
    let sum = 0;
    for (let slot = 0; slot < this.#counts.length; slot++) {
      const bucket = this.#slots[slot] ?? -1;
      if (bucket >= oldest && bucket <= newest) sum += this.#counts[slot] ?? 0;
    }
    return sum;
  }
}
