/** Inbound client authentication by static keys stored as SHA-256 digests. (Being written: issue 9 part C.) */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/types.js';

/** undefined when no keys are configured (loopback listen): then every client is let in. */
export function createInboundAuth(config: Config['inboundAuth']): ((req: IncomingMessage) => boolean) | undefined {
  if (config.keys.length === 0) return undefined;
  return () => false;
}
