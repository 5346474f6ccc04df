/**
 * The two pure parts of WebSocket forwarding: the frame-boundary tracker (headers split anywhere across
 * chunks, 7-, 16- and 64-bit lengths, masked and unmasked, empty payloads, a frame ending inside a chunk)
 * and the close frame the proxy writes itself, read back by ws's own parser.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Writable } from 'node:stream';
import * as ws from 'ws';
import { FrameBoundaryTracker } from '../../src/proxy/upgrade/frame-boundary.js';
import { CLOSE_GOING_AWAY, closeFrame } from '../../src/proxy/upgrade/ws-close.js';

/** ws's own frame parser: exported by ws, but not described by @types/ws. */
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => Writable };

/** One frame as a peer writes it (RFC 6455 §5.2). */
function frame(opcode: number, payload: Buffer, options: { masked?: boolean; fin?: boolean } = {}): Buffer {
  const { masked = false, fin = true } = options;
  const length = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65536) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    const extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
    head.push(maskBit | 127, ...extended);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((byte, i) => byte ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A stream of frames and the offsets where each one ends. */
function stream(frames: Buffer[]): { bytes: Buffer; ends: Set<number> } {
  const ends = new Set<number>();
  let offset = 0;
  for (const item of frames) ends.add((offset += item.length));
  return { bytes: Buffer.concat(frames), ends };
}

const MIXED = [
  frame(0x1, Buffer.from('hello')),
  frame(0x2, randomBytes(300), { masked: true }), // 16-bit length
  frame(0x9, Buffer.alloc(0)), // an empty ping
  frame(0x1, Buffer.from('frag-'), { fin: false, masked: true }),
  frame(0xa, Buffer.from('pong'), { masked: true }), // control frame between fragments
  frame(0x0, Buffer.from('ment')),
  frame(0x2, randomBytes(70_000)), // 64-bit length
  frame(0x2, randomBytes(125), { masked: true }), // the longest 7-bit length
  frame(0x2, randomBytes(126)), // the shortest 16-bit length
];

describe('FrameBoundaryTracker', () => {
  it('is at a boundary after each whole frame and nowhere else, fed one byte at a time', () => {
    const { bytes, ends } = stream(MIXED.slice(0, 6));
    const tracker = new FrameBoundaryTracker();
    expect(tracker.atBoundary).toBe(true);
    for (let offset = 0; offset < bytes.length; offset++) {
      expect(tracker.push(bytes.subarray(offset, offset + 1))).toBe(1);
      expect(tracker.atBoundary, `after byte ${offset + 1}`).toBe(ends.has(offset + 1));
    }
  });

  it('finds the same boundaries whatever the first chunk boundary (headers split at every position)', () => {
    const { bytes, ends } = stream(MIXED);
    // Every split point inside the first 400 bytes cuts some header at every one of its positions.
    for (let split = 1; split < 400; split++) {
      const tracker = new FrameBoundaryTracker();
      tracker.push(bytes.subarray(0, split));
      expect(tracker.atBoundary, `split at ${split}`).toBe(ends.has(split));
      tracker.push(bytes.subarray(split));
      expect(tracker.atBoundary).toBe(true);
    }
  });

  it('with stopAtBoundary, stops right after each frame that ends inside a chunk', () => {
    const { bytes, ends } = stream(MIXED);
    for (const chunkSize of [1, 3, 7, 64, 1000, 65_536, bytes.length]) {
      const tracker = new FrameBoundaryTracker();
      const found: number[] = [];
      let offset = 0;
      for (let start = 0; start < bytes.length; start += chunkSize) {
        let chunk = bytes.subarray(start, start + chunkSize);
        while (chunk.length > 0) {
          const taken = tracker.push(chunk, true);
          if (taken === 0) throw new Error(`no progress at ${offset}`);
          offset += taken;
          if (tracker.atBoundary) found.push(offset);
          chunk = chunk.subarray(taken);
        }
      }
      expect(found, `chunks of ${chunkSize}`).toEqual([...ends]);
    }
  });

  it('counts a 64-bit length past without the payload: still inside the frame after 1 MiB of a 2^40-byte frame', () => {
    const tracker = new FrameBoundaryTracker();
    const head = Buffer.from([0x82, 127, 0, 0, 0x01, 0, 0, 0, 0, 0]);
    tracker.push(head);
    tracker.push(Buffer.alloc(1024 * 1024));
    expect(tracker.atBoundary).toBe(false);
    expect(tracker.invalid).toBe(false);
  });

  it('a 64-bit length with its top bit set is invalid: never at a boundary again', () => {
    const tracker = new FrameBoundaryTracker();
    tracker.push(Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]));
    expect(tracker.invalid).toBe(true);
    expect(tracker.atBoundary).toBe(false);
    expect(tracker.push(frame(0x1, Buffer.from('x')), true)).toBe(3);
    expect(tracker.atBoundary).toBe(false);
  });

  it('notes a close frame, masked or not, and nothing else as one', () => {
    const tracker = new FrameBoundaryTracker();
    tracker.push(stream(MIXED).bytes);
    expect(tracker.sawClose).toBe(false);
    tracker.push(frame(0x8, Buffer.from([0x03, 0xe8]), { masked: true }));
    expect(tracker.sawClose).toBe(true);
  });
});

describe('closeFrame', () => {
  function parse(bytes: Buffer, isServer: boolean): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      // ws's own parser: a server expects masked frames, a client unmasked ones.
      const receiver = new Receiver({ isServer });
      receiver.on('conclude', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') }));
      receiver.on('error', reject);
      receiver.write(bytes);
    });
  }

  it('towards the client: unmasked, code 1001 and the reason', async () => {
    const bytes = closeFrame(CLOSE_GOING_AWAY, 'idle timeout', false);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x88, 14, 0x03, 0xe9]));
    expect(await parse(bytes, false)).toEqual({ code: 1001, reason: 'idle timeout' });
  });

  it('towards the upstream: masked with a fresh key each time, and ws as a server reads it', async () => {
    const first = closeFrame(CLOSE_GOING_AWAY, 'proxy shutting down', true);
    const second = closeFrame(CLOSE_GOING_AWAY, 'proxy shutting down', true);
    expect(first[1]! & 0x80).toBe(0x80);
    expect(first.subarray(2, 6).equals(second.subarray(2, 6))).toBe(false);
    expect(await parse(first, true)).toEqual({ code: 1001, reason: 'proxy shutting down' });
  });

  it('keeps the payload within a control frame’s 125 bytes', async () => {
    const bytes = closeFrame(CLOSE_GOING_AWAY, 'x'.repeat(300), false);
    expect(bytes[1]).toBe(125);
    expect((await parse(bytes, false)).reason).toHaveLength(123);
  });
});
