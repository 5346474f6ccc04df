/**
 * Inbound client authentication by static keys stored as SHA-256 digests: the config never holds a key,
 * only `printf %s "$KEY" | sha256sum`. Nothing here logs or returns the presented value.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/types.js';

/** undefined when no keys are configured (loopback listen): then every client is let in. */
export function createInboundAuth(config: Config['inboundAuth']): ((req: IncomingMessage) => boolean) | undefined {
  if (config.keys.length === 0) return undefined;
  const header = config.header; // lowercased by the config loader
  const digests = config.keys.map((key) => Buffer.from(key.sha256, 'hex'));

  return (req) => {
    const presented = singleHeaderValue(req.rawHeaders, header);
    if (!presented) return false; // absent, repeated, or empty: an empty value is no key, whatever is configured
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    // Every digest is compared, each in constant time, so the time taken does not tell which key (if
    // any) matched, nor how much of a digest did.
    let matched = false;
    for (const expected of digests) matched = timingSafeEqual(digest, expected) || matched;
    return matched;
  };
}

/**
 * The value of `name` when the request carries it exactly once; undefined when absent or repeated.
 * Read from rawHeaders because Node joins repeated headers with ", " in `req.headers`, which would turn
 * two keys into one value that matches neither (or, for a crafted key, a third one).
 */
function singleHeaderValue(rawHeaders: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const candidate = rawHeaders[i] as string;
    if (candidate.length !== name.length || candidate.toLowerCase() !== name) continue;
    if (value !== undefined) return undefined;
    value = rawHeaders[i + 1] as string;
  }
  return value;
}
