/**
 * One switched WebSocket connection: bytes copied both ways untouched (frames, masks and extensions stay
 * as the peers wrote them), with backpressure each way. The proxy only watches frame boundaries
 * (frame-boundary.ts), so that when it has to end the connection itself (idle, too old, shutting down)
 * it can send each side a close frame 1001 between two frames and then end the sockets. An error on
 * either side destroys both; nothing here throws or leaves an 'error' event unheard.
 */
import type { Duplex } from 'node:stream';
import { FrameBoundaryTracker } from './frame-boundary.js';
import { CLOSE_GOING_AWAY, closeFrame } from './ws-close.js';

/** Why a connection ended: the proxy's own three, or the side that started the end. */
export type CloseReason = 'idle' | 'lifetime' | 'shutdown' | 'client' | 'upstream';

export interface ClosedSummary {
  readonly reason: CloseReason;
  readonly durationMs: number;
  readonly bytesFromClient: number;
  readonly bytesFromUpstream: number;
}

export interface UpgradedConnectionOptions {
  readonly client: Duplex;
  readonly upstream: Duplex;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  /** Called once, when both sockets are closed. */
  onClosed(summary: ClosedSummary): void;
}

/** How long a side may stay inside a frame once the proxy wants to close; then the connection is cut. */
const BOUNDARY_WAIT_MS = 2_000;
/** How long the other side may take to close after one side is gone (or after the close frames went out). */
const LINGER_MS = 5_000;
/** setTimeout's ceiling (about 24.8 days); a longer lifetime is waited out in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const REASON_TEXT: Record<'idle' | 'lifetime' | 'shutdown', string> = {
  idle: 'idle timeout',
  lifetime: 'maximum lifetime reached',
  shutdown: 'proxy shutting down',
};

/**
 * One direction: the bytes `source` sends, copied to `dest`. Once the proxy closes this direction, the
 * rest of the current frame still passes, then the close frame goes out and nothing more is copied.
 */
class Direction {
  readonly tracker = new FrameBoundaryTracker();
  bytes = 0;
  #state: 'copying' | 'closing' | 'closed' = 'copying';
  #frame: Buffer | undefined;
  #awaitingDrain = false;
  #closeFrameNoted = false;

  constructor(
    readonly source: Duplex,
    readonly dest: Duplex,
    private readonly onActivity: () => void,
    /** Called once, when the source's own close frame passes: that side started the closing handshake. */
    private readonly onCloseFrame: () => void,
    /** Called once, when the proxy's close frame has gone out in this direction. */
    private readonly onClosed: () => void,
  ) {}

  get closed(): boolean {
    return this.#state === 'closed';
  }

  readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    this.onActivity();
    if (this.#state === 'closed') return; // after our close frame: read and dropped
    if (this.#state === 'copying') {
      this.tracker.push(chunk);
      if (!this.#closeFrameNoted && this.tracker.sawClose) {
        this.#closeFrameNoted = true;
        this.onCloseFrame();
      }
      this.#write(chunk);
      return;
    }
    const taken = this.tracker.push(chunk, true);
    this.#write(taken === chunk.length ? chunk : chunk.subarray(0, taken));
    if (this.tracker.atBoundary) this.#sendClose();
  };

  /** Sends `frame` at the next frame boundary (at once when between frames), then copies no more. */
  close(frame: Buffer): void {
    if (this.#state !== 'copying') return;
    this.#frame = frame;
    this.#state = 'closing';
    if (this.tracker.atBoundary || this.dest.writableEnded || this.dest.destroyed) this.#sendClose();
  }

  #sendClose(): void {
    this.#state = 'closed';
    const { dest, source } = this;
    if (!dest.writableEnded && !dest.destroyed && this.#frame) dest.write(this.#frame);
    // What still comes from the source (the peer's answering close frame) is read and dropped.
    source.resume();
    this.onClosed();
  }

  #write(chunk: Buffer): void {
    const { dest, source } = this;
    if (dest.writableEnded || dest.destroyed || chunk.length === 0) return;
    if (dest.write(chunk) || this.#awaitingDrain) return;
    this.#awaitingDrain = true;
    source.pause();
    dest.once('drain', () => {
      this.#awaitingDrain = false;
      source.resume();
    });
  }
}

export class UpgradedConnection {
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #toUpstream: Direction;
  readonly #toClient: Direction;
  readonly #idleTimeoutMs: number;
  readonly #onClosed: (summary: ClosedSummary) => void;
  readonly #startedAt = performance.now();
  readonly #lifetimeEndsAt: number;
  #lastActivity = performance.now();
  #reason: CloseReason | undefined;
  #closing = false;
  #ending = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #lifetimeTimer: NodeJS.Timeout | undefined;
  #cutTimer: NodeJS.Timeout | undefined;
  readonly #closedSides = new Set<'client' | 'upstream'>();
  #finished = false;

  constructor(options: UpgradedConnectionOptions) {
    const { client, upstream } = options;
    this.#client = client;
    this.#upstream = upstream;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#onClosed = options.onClosed;
    this.#lifetimeEndsAt = this.#startedAt + options.maxLifetimeMs;
    const touch = (): void => void (this.#lastActivity = performance.now());
    const directionClosed = (): void => this.#directionClosed();
    this.#toUpstream = new Direction(client, upstream, touch, () => void (this.#reason ??= 'client'), directionClosed);
    this.#toClient = new Direction(upstream, client, touch, () => void (this.#reason ??= 'upstream'), directionClosed);
    // Listeners first: from here on every error and every close is heard.
    for (const [socket, side] of [
      [client, 'client'],
      [upstream, 'upstream'],
    ] as const) {
      socket.on('error', () => this.#failed(side));
      // The first side to send a close frame, a FIN or an error, or to close, is the one that ended it.
      socket.once('close', () => this.#socketClosed(side));
      socket.once('end', () => this.#ended(side));
    }
  }

  /** Starts copying; `head` is what the client sent after its handshake, for the upstream. */
  start(head: Buffer): void {
    if (head.length > 0) this.#toUpstream.onData(head);
    this.#client.on('data', this.#toUpstream.onData);
    this.#upstream.on('data', this.#toClient.onData);
    this.#idleTimer = setTimeout(this.#checkIdle, this.#idleTimeoutMs);
    this.#armLifetime();
    // A socket that closed before its listeners were attached would otherwise never be counted.
    if (this.#client.closed) this.#socketClosed('client');
    if (this.#upstream.closed) this.#socketClosed('upstream');
    if (this.#client.destroyed || this.#upstream.destroyed) this.destroy();
  }

  get bytesFromClient(): number {
    return this.#toUpstream.bytes;
  }

  get bytesFromUpstream(): number {
    return this.#toClient.bytes;
  }

  /**
   * Ends the connection from the proxy's side: close frame 1001 to both peers, each at a frame boundary of
   * its direction, then the sockets are ended. A side still inside a frame after a short wait is cut.
   */
  close(reason: 'idle' | 'lifetime' | 'shutdown'): void {
    if (this.#closing || this.#finished) return;
    this.#closing = true;
    this.#reason ??= reason;
    this.#clearTimers();
    const text = REASON_TEXT[reason];
    this.#setCutTimer(BOUNDARY_WAIT_MS);
    // Towards the upstream the proxy speaks as the client, whose frames are masked (RFC 6455 §5.3).
    this.#toUpstream.close(closeFrame(CLOSE_GOING_AWAY, text, true));
    this.#toClient.close(closeFrame(CLOSE_GOING_AWAY, text, false));
  }

  /** Cuts both sockets at once. */
  destroy(): void {
    this.#client.destroy();
    this.#upstream.destroy();
  }

  /**
   * Both close frames are out: both sockets are ended, and the peers get the linger time to answer and
   * close. Not before: a peer that sees the end of the stream may stop sending in the middle of its frame.
   */
  #directionClosed(): void {
    if (this.#ending || !(this.#toUpstream.closed && this.#toClient.closed)) return;
    this.#ending = true;
    for (const socket of [this.#client, this.#upstream]) if (!socket.writableEnded && !socket.destroyed) socket.end();
    this.#setCutTimer(LINGER_MS);
  }

  #setCutTimer(ms: number): void {
    if (this.#cutTimer) clearTimeout(this.#cutTimer);
    this.#cutTimer = setTimeout(() => this.destroy(), ms);
    this.#cutTimer.unref();
  }

  readonly #checkIdle = (): void => {
    const silentMs = performance.now() - this.#lastActivity;
    if (silentMs >= this.#idleTimeoutMs) this.close('idle');
    else this.#idleTimer = setTimeout(this.#checkIdle, this.#idleTimeoutMs - silentMs);
  };

  #armLifetime(): void {
    const left = this.#lifetimeEndsAt - performance.now();
    if (left <= 0) return this.close('lifetime');
    this.#lifetimeTimer = setTimeout(() => this.#armLifetime(), Math.min(left, MAX_TIMER_MS));
  }

  /** A peer sent its FIN: it sends nothing more, so neither does the proxy on its behalf. */
  #ended(side: 'client' | 'upstream'): void {
    this.#reason ??= side;
    const other = side === 'client' ? this.#upstream : this.#client;
    if (!other.writableEnded && !other.destroyed) other.end();
  }

  #failed(side: 'client' | 'upstream'): void {
    this.#reason ??= side;
    this.destroy();
  }

  #socketClosed(side: 'client' | 'upstream'): void {
    if (this.#closedSides.has(side)) return;
    this.#closedSides.add(side);
    this.#reason ??= side;
    if (this.#closedSides.size === 2) return this.#finish();
    // One side is gone: the other gets its pending bytes written, then a bounded time to close.
    const other = side === 'client' ? this.#upstream : this.#client;
    if (!other.writableEnded && !other.destroyed) other.end();
    this.#setCutTimer(LINGER_MS);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#clearTimers();
    if (this.#cutTimer) clearTimeout(this.#cutTimer);
    this.#onClosed({
      reason: this.#reason ?? 'upstream',
      durationMs: Math.round(performance.now() - this.#startedAt),
      bytesFromClient: this.#toUpstream.bytes,
      bytesFromUpstream: this.#toClient.bytes,
    });
  }

  #clearTimers(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#lifetimeTimer) clearTimeout(this.#lifetimeTimer);
    this.#idleTimer = undefined;
    this.#lifetimeTimer = undefined;
  }
}
