/**
 * Sends one request upstream over the route's keep-alive undici Pool and streams the answer to the
 * client as it arrives (no buffering, backpressure both ways). A rejection the caller wants to replay
 * is held back instead: its small body is kept, so that if no replay happens after all, the client
 * still gets the upstream's answer untouched.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { trailerList, withoutHopByHop } from './header-rules.js';

/** A rejection larger than this is streamed to the client rather than held for a replay. */
const MAX_HELD_REJECTION_BYTES = 64 * 1024;

export interface ForwardRequest {
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, …] list, Authorization included. */
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
}

export interface HeldResponse {
  readonly status: number;
  readonly statusMessage: string | undefined;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

export type ForwardResult =
  /** The response was streamed to the client (completely, or until the client went away). */
  | { readonly kind: 'sent'; readonly status: number }
  /** A rejection was held back, complete, for the caller to replay or to send with `sendHeld`. */
  | { readonly kind: 'held'; readonly response: HeldResponse }
  /** No usable response; `responseStarted` says whether the client already got part of one. */
  | { readonly kind: 'failed'; readonly error: Error; readonly responseStarted: boolean };

export function forward(
  pool: Dispatcher,
  request: ForwardRequest,
  res: ServerResponse,
  holdStatus: (status: number) => boolean,
): Promise<ForwardResult> {
  return new Promise((resolve) => {
    pool.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.headersTimeoutMs,
        bodyTimeout: request.bodyIdleTimeoutMs,
      },
      new ForwardHandler(request, res, holdStatus, resolve),
    );
  });
}

export function sendHeld(res: ServerResponse, held: HeldResponse): void {
  if (held.statusMessage) res.writeHead(held.status, held.statusMessage, held.headers);
  else res.writeHead(held.status, held.headers);
  res.end(held.body);
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #holdStatus: (status: number) => boolean;
  readonly #resolve: (result: ForwardResult) => void;
  readonly #isHead: boolean;
  #controller: Dispatcher.DispatchController | undefined;
  #status = 0;
  #held: { status: number; statusMessage: string | undefined; headers: Record<string, string | string[]>; chunks: Buffer[]; size: number } | undefined;
  #done = false;

  constructor(request: ForwardRequest, res: ServerResponse, holdStatus: (status: number) => boolean, resolve: (result: ForwardResult) => void) {
    this.#res = res;
    this.#holdStatus = holdStatus;
    this.#resolve = resolve;
    this.#isHead = request.method === 'HEAD';
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The client left: stop the upstream request instead of finishing it for nobody.
    if (this.#res.destroyed) controller.abort(new Error('client closed the connection'));
    else this.#res.once('close', this.#onClientClose);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx interim responses are for this hop only
    this.#status = statusCode;
    const outgoing = withoutHopByHop(headers);
    if (this.#holdStatus(statusCode) && !this.#tooLargeToHold(headers)) {
      this.#held = { status: statusCode, statusMessage, headers: outgoing, chunks: [], size: 0 };
      return;
    }
    this.#writeHead(statusCode, statusMessage, outgoing);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held) {
      held.chunks.push(chunk);
      held.size += chunk.length;
      if (held.size > MAX_HELD_REJECTION_BYTES) this.#releaseHeld();
      return;
    }
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[]>): void {
    const held = this.#held;
    if (held) {
      return this.#finish({
        kind: 'held',
        response: { status: held.status, statusMessage: held.statusMessage, headers: held.headers, body: Buffer.concat(held.chunks, held.size) },
      });
    }
    const rawTrailers = (controller as { rawTrailers?: Buffer[] }).rawTrailers ?? flatten(trailers);
    if (rawTrailers.length > 0) this.#res.addTrailers(trailerList(rawTrailers));
    this.#res.end();
    this.#finish({ kind: 'sent', status: this.#status });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const responseStarted = this.#res.headersSent;
    // Mid-body failure: the client must see a broken response, never a short one that looks complete.
    if (responseStarted) this.#res.destroy(error);
    this.#finish({ kind: 'failed', error, responseStarted });
  }

  readonly #onClientClose = (): void => {
    if (!this.#done) this.#controller?.abort(new Error('client closed the connection'));
  };

  #tooLargeToHold(headers: Record<string, string | string[]>): boolean {
    const length = Number(headers['content-length']);
    return Number.isFinite(length) && length > MAX_HELD_REJECTION_BYTES;
  }

  /** A held rejection grew too large: send what we have and stream the rest; there will be no replay. */
  #releaseHeld(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    this.#writeHead(held.status, held.statusMessage, held.headers);
    for (const chunk of held.chunks) this.#res.write(chunk);
  }

  #writeHead(status: number, statusMessage: string | undefined, headers: Record<string, string | string[]>): void {
    if (statusMessage) this.#res.writeHead(status, statusMessage, headers);
    else this.#res.writeHead(status, headers);
    // HEAD and bodyless statuses: Node writes no body, but flush the head now.
    if (this.#isHead) this.#res.flushHeaders();
  }

  #finish(result: ForwardResult): void {
    if (this.#done) return;
    this.#done = true;
    this.#res.off('close', this.#onClientClose);
    this.#resolve(result);
  }
}

function flatten(headers: Record<string, string | string[]>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}
