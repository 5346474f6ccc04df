/**
 * Key layout (docs/redis.md, "Keys"): one hash tag per credential, so its record, lock and change channel hash to one
 * Cluster slot and a script may touch them together.
 *
 *   {<prefix><key>}:record    HASH generation, writer, digest, blob
 *   {<prefix><key>}:lock      STRING owner, with PX expiry
 *   {<prefix><key>}:changed   pub/sub channel; message {"key","generation"}, never a token
 *   {<prefix>}:key-check      STRING, only with an encryptionKey: proves the key at start-up
 */
import { StoreError } from '../../errors.js';

export interface KeyLayout {
  record(key: string): string;
  lock(key: string): string;
  channel(key: string): string;
  /** psubscribe pattern matching the change channel of every key under this prefix. */
  readonly changePattern: string;
  readonly keyCheck: string;
}

export function keyLayout(prefix: string): KeyLayout {
  const tag = (key: string): string => {
    // A brace in the key would end the hash tag early and scatter a credential over slots.
    if (key === '' || /[{}]/.test(key)) throw new StoreError(`token store key must be non-empty and contain no "{" or "}"`);
    return `{${prefix}${key}}`;
  };
  return {
    record: (key) => `${tag(key)}:record`,
    lock: (key) => `${tag(key)}:lock`,
    channel: (key) => `${tag(key)}:changed`,
    // Redis glob: escape the prefix so "*", "?", "[" or "\" in it match only themselves.
    changePattern: `{${prefix.replace(/[*?[\]\\]/g, '\\$&')}*}:changed`,
    keyCheck: `{${prefix}}:key-check`,
  };
}
