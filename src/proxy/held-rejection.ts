/**
 * A token rejection held back while a replay may follow: its head and its small body, kept whole so that,
 * if no replay happens after all, the client still gets the upstream's answer untouched. Requests
 * (forward.ts) and WebSocket handshakes (upgrade/handshake.ts) hold rejections the same way.
 */
import type { UpstreamHead } from './response-writer.js';

/** A rejection larger than this is passed to the client as it comes rather than held for a replay. */
export const MAX_HELD_REJECTION_BYTES = 64 * 1024;

export interface HeldResponse extends UpstreamHead {
  readonly body: Buffer;
}

/** True when the answer says up front (Content-Length) that it is too large to hold. */
export function tooLargeToHold(headers: Record<string, string | string[]>): boolean {
  const length = Number(headers['content-length']);
  return Number.isFinite(length) && length > MAX_HELD_REJECTION_BYTES;
}

export class HeldRejection {
  readonly chunks: Buffer[] = [];
  #size = 0;

  constructor(readonly head: UpstreamHead) {}

  /** Keeps a chunk; false once the body has grown past the bound (then the caller sends it on instead). */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.#size += chunk.length;
    return this.#size <= MAX_HELD_REJECTION_BYTES;
  }

  response(): HeldResponse {
    return { ...this.head, body: Buffer.concat(this.chunks, this.#size) };
  }
}
