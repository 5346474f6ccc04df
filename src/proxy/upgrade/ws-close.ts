/**
 * The one WebSocket frame the proxy writes itself: a close frame (RFC 6455 §5.5.1), sent to both sides when
 * it ends an upgraded connection (idle, too old, shutting down). Frames towards the upstream play the
 * client's part, so they are masked with a fresh random key (§5.3); frames towards the client are not.
 */
import { randomBytes } from 'node:crypto';

/** RFC 6455 §7.4.1: "an endpoint is going away, such as a server going down". */
export const CLOSE_GOING_AWAY = 1001;

/** A control frame's payload is at most 125 bytes: the 2-byte code and up to 123 bytes of reason. */
const MAX_REASON_BYTES = 123;

export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const reasonBytes = Buffer.from(reason, 'utf8').subarray(0, MAX_REASON_BYTES);
  const payload = Buffer.alloc(2 + reasonBytes.length);
  payload.writeUInt16BE(code, 0);
  reasonBytes.copy(payload, 2);
  // FIN + opcode 0x8; the payload length fits in 7 bits.
  const head = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!;
  return Buffer.concat([head, key, payload]);
}
