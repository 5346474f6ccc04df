/**
 * One budget for the request bodies buffered for a possible replay, all requests together: each body
 * may be up to maxReplayBodyBytes, so many concurrent uploads would otherwise hold that many times over.
 * A body's Content-Length is reserved before a byte of it is read, and released when its response closes.
 */
export class BodyBudget {
  #available: number;

  constructor(maxBytes: number) {
    this.#available = maxBytes;
  }

  /** False when `bytes` do not fit: then nothing is reserved. */
  tryReserve(bytes: number): boolean {
    if (bytes > this.#available) return false;
    this.#available -= bytes;
    return true;
  }

  release(bytes: number): void {
    this.#available += bytes;
  }

  get available(): number {
    return this.#available;
  }
}
