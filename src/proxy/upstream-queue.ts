/**
 * Bounds the requests waiting for a connection to one upstream. undici's Pool queues without limit, so
 * a slow upstream plus eager clients would grow that queue (and every queued request's client socket)
 * without end. A request is counted from dispatch until undici is done with it, so a request that gave
 * up waiting still counts until undici drops it from its queue.
 */
import { ProxyError } from '../errors.js';

/** What a refused client is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 1;

export class UpstreamQueue {
  readonly #name: string;
  readonly #maxConnections: number;
  readonly #maxInFlight: number;
  readonly #timeoutMs: number;
  #inFlight = 0;

  constructor(name: string, limits: { maxConnections: number; maxQueuedRequests: number; queueTimeoutMs: number }) {
    this.#name = name;
    this.#maxConnections = limits.maxConnections;
    this.#maxInFlight = limits.maxConnections + limits.maxQueuedRequests;
    this.#timeoutMs = limits.queueTimeoutMs;
  }

  /**
   * Takes a place for one request, or throws 503 UPSTREAM_QUEUE_FULL. Returns how long the request may
   * wait for a connection, or 0 when one should be free (then no timer is needed).
   */
  enter(): number {
    const ahead = this.#inFlight;
    if (ahead >= this.#maxInFlight) {
      throw new ProxyError('UPSTREAM_QUEUE_FULL', `too many requests are waiting for upstream ${this.#name}`, {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      });
    }
    this.#inFlight = ahead + 1;
    return ahead >= this.#maxConnections ? this.#timeoutMs : 0;
  }

  /** Called once per entered request, when undici is done with it. */
  leave(): void {
    this.#inFlight--;
  }

  timedOut(): ProxyError {
    return new ProxyError('UPSTREAM_QUEUE_TIMEOUT', `no connection to upstream ${this.#name} became free in time`, {
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }
}
