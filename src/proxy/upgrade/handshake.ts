/**
 * One WebSocket handshake sent upstream over the route's undici Pool (so the egress proxy, TLS and the
 * connection timeouts of plain requests apply), and what came back: a 101 with the upstream's socket, a
 * rejection held back for a replay (small, complete), or any other answer, which is written to the
 * client's socket as it arrives and ends the connection. The result has the shape sendWithReplay works
 * with; the switched socket is handed over through `onSwitched`, before the result is reported.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../../errors.js';
import type { ForwardResult, ForwardTarget } from '../forward.js';
import type { UpstreamQueue } from '../upstream-queue.js';
import { HeldRejection, tooLargeToHold } from '../held-rejection.js';
import { endAnswered, finalResponseHead, type Headers } from './socket-response.js';

export interface HandshakeRequest {
  readonly path: string;
  /** Flat [name, value, …] list, Authorization included; no Connection or Upgrade (undici adds them). */
  readonly headers: string[];
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
}

export interface Switched {
  readonly headers: Headers;
  readonly socket: Duplex;
}

/**
 * Sends the handshake. `client` is the client's socket: a final answer is written to it, and its closing
 * aborts the handshake. Throws 503 UPSTREAM_QUEUE_FULL when too many requests already wait for the upstream.
 */
export function sendHandshake(
  target: ForwardTarget,
  request: HandshakeRequest,
  client: Duplex,
  holdStatus: (status: number) => boolean,
  onSwitched: (switched: Switched) => void,
): Promise<ForwardResult> {
  const queueTimeoutMs = target.queue.enter();
  return new Promise((resolve) => {
    const handler = new HandshakeHandler(target, client, holdStatus, onSwitched, resolve, queueTimeoutMs);
    try {
      target.pool.dispatch(
        {
          method: 'GET',
          path: request.path,
          headers: request.headers,
          upgrade: 'websocket',
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

class HandshakeHandler implements Dispatcher.DispatchHandler {
  readonly #target: ForwardTarget;
  readonly #queue: UpstreamQueue;
  readonly #client: Duplex;
  readonly #holdStatus: (status: number) => boolean;
  readonly #onSwitched: (switched: Switched) => void;
  readonly #resolve: (result: ForwardResult) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #queueTimer: NodeJS.Timeout | undefined;
  #held: HeldRejection | undefined;
  #status = 0;
  /** The head of a final answer went to the client. */
  #answering = false;
  #done = false;
  #leftQueue = false;

  constructor(
    target: ForwardTarget,
    client: Duplex,
    holdStatus: (status: number) => boolean,
    onSwitched: (switched: Switched) => void,
    resolve: (result: ForwardResult) => void,
    queueTimeoutMs: number,
  ) {
    this.#target = target;
    this.#queue = target.queue;
    this.#client = client;
    this.#holdStatus = holdStatus;
    this.#onSwitched = onSwitched;
    this.#resolve = resolve;
    if (queueTimeoutMs > 0) this.#queueTimer = setTimeout(() => this.#queueTimedOut(), queueTimeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#clearQueueTimer();
    if (this.#done) controller.abort(new Error('the handshake gave up waiting for a connection'));
    else if (this.#client.destroyed) controller.abort(new Error('client closed the connection'));
    else this.#client.once('close', this.#onClientClose);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, _status: number, headers: Headers, socket: Duplex): void {
    this.#leaveQueue();
    // undici removed its own listeners: until the connection is wired up, an error must not go unheard.
    socket.on('error', ignore);
    if (this.#done || this.#client.destroyed) {
      socket.destroy();
      this.#finish({ kind: 'failed', error: new Error('client closed the connection'), responseStarted: false });
      return;
    }
    this.#status = 101;
    this.#onSwitched({ headers, socket });
    this.#finish({ kind: 'sent', status: 101 });
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers, statusMessage?: string): void {
    if (status >= 100 && status < 200) return; // interim answers (103) are for this hop only
    this.#status = status;
    if (this.#holdStatus(status) && !tooLargeToHold(headers)) {
      this.#held = new HeldRejection({ status, statusMessage, headers });
      return;
    }
    this.#writeHead(controller, finalResponseHead(status, statusMessage, headers, this.#target.responseScope));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held) {
      if (!held.add(chunk)) this.#releaseHeld(controller);
      return;
    }
    this.#write(controller, chunk);
  }

  onResponseEnd(): void {
    this.#leaveQueue();
    const held = this.#held;
    if (held) {
      this.#finish({ kind: 'held', response: held.response() });
      return;
    }
    endAnswered(this.#client);
    this.#finish({ kind: 'sent', status: this.#status });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#leaveQueue();
    this.#clearQueueTimer();
    // Part of an answer went out: the client must see it broken off, never a short one that looks complete.
    if (this.#answering) this.#client.destroy();
    this.#finish({ kind: 'failed', error, responseStarted: this.#answering });
  }

  readonly #onClientClose = (): void => {
    if (!this.#done) this.#controller?.abort(new Error('client closed the connection'));
  };

  #queueTimedOut(): void {
    this.#queueTimer = undefined;
    this.#finish({ kind: 'failed', error: this.#queue.timedOut(), responseStarted: false });
  }

  /** A held rejection grew too large: it goes to the client as it is, and there will be no replay. */
  #releaseHeld(controller: Dispatcher.DispatchController): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    const { status, statusMessage, headers } = held.head;
    if (!this.#writeHead(controller, finalResponseHead(status, statusMessage, headers, this.#target.responseScope))) return;
    for (const chunk of held.chunks) this.#write(controller, chunk);
  }

  #writeHead(controller: Dispatcher.DispatchController, head: string | undefined): boolean {
    if (head === undefined) {
      controller.abort(
        new ProxyError(
          'UPSTREAM_BAD_RESPONSE',
          'the upstream answered the WebSocket handshake with a head that cannot be forwarded (invalid status, reason phrase or header)',
        ),
      );
      return false;
    }
    this.#answering = true;
    this.#write(controller, Buffer.from(head, 'latin1'));
    return true;
  }

  #write(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const client = this.#client;
    if (client.destroyed || client.writableEnded) return;
    if (!client.write(chunk)) {
      controller.pause();
      client.once('drain', () => controller.resume());
    }
  }

  #clearQueueTimer(): void {
    if (this.#queueTimer) clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
  }

  #leaveQueue(): void {
    if (this.#leftQueue) return;
    this.#leftQueue = true;
    this.#queue.leave();
  }

  #finish(result: ForwardResult): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearQueueTimer();
    this.#client.off('close', this.#onClientClose);
    this.#resolve(result);
  }
}

function ignore(): void {}
