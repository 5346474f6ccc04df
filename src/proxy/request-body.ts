/**
 * Decides whether a request body can be replayed, and if so buffers it. Bodies of known length up to
 * `maxReplayBodyBytes` are read into memory so the exact bytes can be sent twice; larger bodies and
 * bodies of unknown length (chunked) are streamed through untouched and are never replayed.
 */
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';

export type RequestBody = { readonly replayable: true; readonly bytes: Buffer | null } | { readonly replayable: false };

const STREAMED: RequestBody = { replayable: false };
export const NO_BODY: RequestBody = { replayable: true, bytes: null };

/** RFC 9112 §6.3: a request has a body only with Content-Length or Transfer-Encoding. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

export async function readReplayableBody(req: IncomingMessage, maxReplayBodyBytes: number): Promise<RequestBody> {
  const lengthHeader = req.headers['content-length'];
  if (lengthHeader === undefined) return req.headers['transfer-encoding'] === undefined ? NO_BODY : STREAMED;
  const length = Number(lengthHeader);
  if (length === 0) return NO_BODY;
  if (length > maxReplayBodyBytes) return STREAMED;
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
  return { replayable: true, bytes: Buffer.concat(chunks, size) };
}
