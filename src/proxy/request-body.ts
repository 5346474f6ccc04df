/**
 * Decides whether a request body can be replayed, and if so buffers it. Bodies of known length up to
 * `maxReplayBodyBytes` are read into memory so the exact bytes can be sent twice; larger bodies and
 * bodies of unknown length (chunked) are streamed through untouched and are never replayed.
 */
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';

/** `replayableLength` of a body that is streamed through, never buffered. */
export const STREAMED = -1;

/** RFC 9112 §6.3: a request has a body only with Content-Length or Transfer-Encoding. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/** 0 for no body, STREAMED for one that is not buffered, otherwise the bytes to buffer for a possible replay. */
export function replayableLength(req: IncomingMessage, maxReplayBodyBytes: number): number {
  const lengthHeader = req.headers['content-length'];
  if (lengthHeader === undefined) return req.headers['transfer-encoding'] === undefined ? 0 : STREAMED;
  // Node's parser has checked that Content-Length is digits (and refuses it next to Transfer-Encoding).
  const length = Number(lengthHeader);
  return length > maxReplayBodyBytes ? STREAMED : length;
}

/** Reads a body of exactly `length` bytes. */
export async function readBody(req: IncomingMessage, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (error) {
    throw new ProxyError('REQUEST_BODY_ERROR', 'the request body could not be read', { cause: error });
  }
  // Node's parser enforces Content-Length, so a short body here means the client went away mid-body.
  if (size !== length) throw new ProxyError('REQUEST_BODY_ERROR', 'the request body was shorter than its Content-Length');
  return Buffer.concat(chunks, size);
}
