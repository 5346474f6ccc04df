/**
 * Sends one request upstream over the route's keep-alive undici Pool and streams the answer to the
 * client as it arrives (no buffering, backpressure both ways). A rejection the caller wants to replay
 * is held back instead: its small body is kept, so that if no replay happens after all, the client
 * still gets the upstream's answer untouched. Everything reaches the client through response-writer,
 * which refuses (502) what Node cannot write rather than throw.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import { withoutHopByHop } from './header-rules.js';
import { scopeResponseHeaders, type ResponseScope } from './response-scope.js';
import {
  endUpstreamResponse,
  sendUpstreamResponse,
  writeUpstreamChunk,
  writeUpstreamHead,
  type HeadOutcome,
  type UpstreamHead,
} from './response-writer.js';
import type { UpstreamQueue } from './upstream-queue.js';
import { HeldRejection, tooLargeToHold, type HeldResponse } from './held-rejection.js';

/** What forward needs of a route. */
export interface ForwardTarget {
  readonly pool: Dispatcher;
  readonly queue: UpstreamQueue;
  readonly responseScope: ResponseScope;
}

export interface ForwardRequest {
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, …] list, Authorization included. */
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
}

export type { HeldResponse } from './held-rejection.js';

export type ForwardResult =
  /** The response was streamed to the client (completely, or until the client went away). */
  | { readonly kind: 'sent'; readonly status: number }
  /** A rejection was held back, complete, for the caller to replay or to send with `sendHeld`. */
  | { readonly kind: 'held'; readonly response: HeldResponse }
  /** No usable response; `responseStarted` says whether the client already got part of one. */
  | { readonly kind: 'failed'; readonly error: Error; readonly responseStarted: boolean };

/** Throws 503 UPSTREAM_QUEUE_FULL when too many requests already wait for this upstream. */
export function forward(
  target: ForwardTarget,
  request: ForwardRequest,
  res: ServerResponse,
  holdStatus: (status: number) => boolean,
): Promise<ForwardResult> {
  const queueTimeoutMs = target.queue.enter();
  return new Promise((resolve) => {
    const handler = new ForwardHandler(target, res, holdStatus, resolve, queueTimeoutMs);
    try {
      target.pool.dispatch(
        {
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: request.body,
          headersTimeout: request.headersTimeoutMs,
          bodyTimeout: request.bodyIdleTimeoutMs,
        },
        handler,
      );
    } catch (error) {
      handler.onResponseError(undefined, error as Error);
    }
  });
}

/** Sends a held rejection as it came; 'refused' means the caller must answer 502 instead. */
export function sendHeld(res: ServerResponse, held: HeldResponse): HeadOutcome {
  return sendUpstreamResponse(res, held, held.body);
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #queue: UpstreamQueue;
  readonly #scope: ResponseScope;
  readonly #holdStatus: (status: number) => boolean;
  readonly #resolve: (result: ForwardResult) => void;
  #controller: Dispatcher.DispatchController | undefined;
  /** Armed only for a request that has to wait for a connection. */
  #queueTimer: NodeJS.Timeout | undefined;
  #status = 0;
  #held: HeldRejection | undefined;
  #done = false;
  #leftQueue = false;

  constructor(
    target: ForwardTarget,
    res: ServerResponse,
    holdStatus: (status: number) => boolean,
    resolve: (result: ForwardResult) => void,
    queueTimeoutMs: number,
  ) {
    this.#res = res;
    this.#queue = target.queue;
    this.#scope = target.responseScope;
    this.#holdStatus = holdStatus;
    this.#resolve = resolve;
    if (queueTimeoutMs > 0) this.#queueTimer = setTimeout(queueTimedOut, queueTimeoutMs, this);
  }

  // undici 7 calls this when it writes the request on a connection (client-h1 writeH1), not while it
  // waits in the pool's queue: the wait for a free connection ends here.
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#queueTimer) {
      clearTimeout(this.#queueTimer);
      this.#queueTimer = undefined;
    }
    // Gave up waiting, or the client left: stop the upstream request instead of finishing it for nobody.
    if (this.#done) controller.abort(new Error('the request gave up waiting for a connection'));
    else if (this.#res.destroyed) controller.abort(new Error('client closed the connection'));
    else this.#res.once('close', this.#onClientClose);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[]>,
    statusMessage?: string,
  ): void {
    if (statusCode >= 100 && statusCode < 200) return; // 1xx interim responses are for this hop only
    this.#status = statusCode;
    const outgoing = withoutHopByHop(headers);
    scopeResponseHeaders(outgoing, this.#scope);
    if (this.#holdStatus(statusCode) && !tooLargeToHold(headers)) {
      this.#held = new HeldRejection({ status: statusCode, statusMessage, headers: outgoing });
      return;
    }
    this.#writeHead(controller, { status: statusCode, statusMessage, headers: outgoing });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held) {
      if (!held.add(chunk)) this.#releaseHeld(controller);
      return;
    }
    if (!writeUpstreamChunk(this.#res, chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[]>): void {
    this.#leaveQueue();
    const held = this.#held;
    if (held) return this.#finish({ kind: 'held', response: held.response() });
    endUpstreamResponse(this.#res, (controller as { rawTrailers?: Buffer[] }).rawTrailers ?? flatten(trailers));
    this.#finish({ kind: 'sent', status: this.#status });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#leaveQueue();
    const res = this.#res;
    const responseStarted = res.headersSent;
    // Mid-body failure: the client must see a broken response, never a short one that looks complete.
    // (A response that is already complete, e.g. the proxy's own 408, is left to finish.)
    if (responseStarted && !res.writableEnded) res.destroy(error);
    this.#finish({ kind: 'failed', error, responseStarted });
  }

  readonly #onClientClose = (): void => {
    if (!this.#done) this.#controller?.abort(new Error('client closed the connection'));
  };

  queueTimedOut(): void {
    this.#queueTimer = undefined;
    this.#finish({ kind: 'failed', error: this.#queue.timedOut(), responseStarted: false });
  }

  /** A held rejection grew too large: send what we have and stream the rest; there will be no replay. */
  #releaseHeld(controller: Dispatcher.DispatchController): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    if (!this.#writeHead(controller, held.head)) return;
    for (const chunk of held.chunks) writeUpstreamChunk(this.#res, chunk);
  }

  /** False when the head was not written; the upstream request is then aborted, and the caller answers. */
  #writeHead(controller: Dispatcher.DispatchController, head: UpstreamHead): boolean {
    const outcome = writeUpstreamHead(this.#res, head, true);
    if (outcome === 'written') return true;
    controller.abort(
      outcome === 'refused'
        ? new ProxyError(
            'UPSTREAM_BAD_RESPONSE',
            'the upstream sent a response head that cannot be forwarded (invalid status, reason phrase or header)',
          )
        : new Error('the client already has a response'),
    );
    return false;
  }

  #leaveQueue(): void {
    if (this.#leftQueue) return;
    this.#leftQueue = true;
    this.#queue.leave();
  }

  #finish(result: ForwardResult): void {
    if (this.#done) return;
    this.#done = true;
    this.#res.off('close', this.#onClientClose);
    this.#resolve(result);
  }
}

function queueTimedOut(handler: ForwardHandler): void {
  handler.queueTimedOut();
}

function flatten(headers: Record<string, string | string[]>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}
