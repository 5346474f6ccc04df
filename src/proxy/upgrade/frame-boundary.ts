/**
 * Follows where WebSocket frames (RFC 6455 §5.2) begin and end in one direction of an upgraded
 * connection, so the proxy can put a close frame of its own between two frames instead of inside one.
 * It reads only frame headers (2 to 14 bytes, the only bytes it ever keeps) and counts payload bytes past
 * without looking at them: payloads are never buffered, unmasked or changed.
 */

/** The largest header: 2 bytes, a 64-bit length, a 4-byte mask key. */
const MAX_HEADER_BYTES = 14;
const OPCODE_CLOSE = 0x8;

export class FrameBoundaryTracker {
  readonly #header = Buffer.alloc(MAX_HEADER_BYTES);
  #headerFilled = 0;
  /** Header bytes needed before the payload length is known: 2, then the full header size. */
  #headerNeeded = 2;
  /** Payload bytes of the current frame still to pass; only meaningful once the header is complete. */
  #payloadLeft = 0;
  #inPayload = false;
  #invalid = false;
  #sawClose = false;

  /** Between two frames: a frame of our own may be written here. */
  get atBoundary(): boolean {
    return !this.#invalid && !this.#inPayload && this.#headerFilled === 0;
  }

  /** A header no WebSocket peer sends (a 64-bit length beyond 2^53): boundaries are no longer known. */
  get invalid(): boolean {
    return this.#invalid;
  }

  /** A close frame's header went past: this side has started the closing handshake. */
  get sawClose(): boolean {
    return this.#sawClose;
  }

  /**
   * Follows `chunk`, which is the next data in this direction. Returns how many of its bytes were taken:
   * all of them, unless `stopAtBoundary` is set and a frame ends inside the chunk, in which case the count
   * ends right after that frame (the rest belongs to frames that come after a boundary).
   */
  push(chunk: Buffer, stopAtBoundary = false): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#invalid) return chunk.length;
      if (this.#inPayload) {
        const taken = Math.min(this.#payloadLeft, chunk.length - offset);
        this.#payloadLeft -= taken;
        offset += taken;
        if (this.#payloadLeft === 0) {
          this.#inPayload = false;
          if (stopAtBoundary) return offset;
        }
        continue;
      }
      // Header bytes, one at a time: a header may be split anywhere across chunks.
      this.#header[this.#headerFilled++] = chunk[offset++] as number;
      if (this.#headerFilled === 2) this.#headerNeeded = headerSize(this.#header);
      if (this.#headerFilled < this.#headerNeeded) continue;
      this.#startPayload();
      if (!this.#inPayload && stopAtBoundary) return offset;
    }
    return offset;
  }

  #startPayload(): void {
    const header = this.#header;
    if ((header[0]! & 0x0f) === OPCODE_CLOSE) this.#sawClose = true;
    const length7 = header[1]! & 0x7f;
    let length: number;
    if (length7 === 126) length = header.readUInt16BE(2);
    else if (length7 === 127) {
      const high = header.readUInt32BE(2);
      // RFC 6455 §5.2: the most significant bit must be 0; beyond 2^53 a Number cannot count it exactly.
      if (high > 0x1fffff) {
        this.#invalid = true;
        return;
      }
      length = high * 2 ** 32 + header.readUInt32BE(6);
    } else length = length7;
    this.#headerFilled = 0;
    this.#headerNeeded = 2;
    this.#payloadLeft = length;
    this.#inPayload = length > 0;
  }
}

/** The whole header's size, from its first two bytes. */
function headerSize(header: Buffer): number {
  const second = header[1]!;
  const length7 = second & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const mask = second & 0x80 ? 4 : 0;
  return 2 + extended + mask;
}
