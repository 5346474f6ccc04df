/**
 * Bounds the silence inside a request body. Node's server has no such limit once the headers are in
 * (requestTimeout is off so long uploads can take their time), so a client that stops mid-body would
 * hold its socket, its buffered bytes and an upstream request for ever. Only requests with a body pay
 * for this: it uses the socket's own idle timer, not a timer of its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class BodyIdleWatch {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #onStall: () => void;

  /** `onStall` runs when the body stalls before any response went out; afterwards a stall destroys the socket. */
  constructor(req: IncomingMessage, res: ServerResponse, idleTimeoutMs: number, onStall: () => void) {
    this.#req = req;
    this.#res = res;
    this.#onStall = onStall;
    // A 'timeout' listener on req keeps Node from destroying the socket itself: Node emits the socket's
    // timeout on the request only while its body is incomplete.
    req.setTimeout(idleTimeoutMs);
    req.once('timeout', this.#stalled);
    req.once('end', this.#ended);
  }

  readonly #stalled = (): void => {
    if (this.#res.headersSent) this.#res.destroy();
    else this.#onStall();
    // A second stall (a client that never reads our answer nor closes) finds no listener: Node destroys the socket.
  };

  readonly #ended = (): void => {
    // Once the response is finished Node has set the socket's keep-alive timer; leave that one alone.
    if (!this.#res.writableFinished) this.#req.socket.setTimeout(0);
  };
}
