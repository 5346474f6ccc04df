/**
 * The store's Lua scripts. Each is idempotent: a reply lost after Redis ran the script, and the
 * caller's retry, must not turn a success into a failure or take effect twice.
 *
 * Scripts are sent with EVALSHA, and as EVAL only when the server does not know them yet (NOSCRIPT: a new
 * or restarted server). EVAL of a script that was already loaded has the same effect, so the fallback is safe.
 */
import { createHash } from 'node:crypto';

export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, lua: string): LuaScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * KEYS[1] record hash. ARGV: expected generation, next generation, writer, digest, blob, channel, message.
 * 1 = written and announced; 2 = this very write is already stored (same generation, writer and digest:
 * our earlier attempt whose reply was lost) so it counts as applied; 0 = stale.
 */
export const COMPARE_AND_SET = script(
  'compareAndSet',
  `local current = redis.call('HMGET', KEYS[1], 'generation', 'writer', 'digest')
local generation = tonumber(current[1]) or 0
if generation == tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'generation', ARGV[2], 'writer', ARGV[3], 'digest', ARGV[4], 'blob', ARGV[5])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
  return 1
end
if generation == tonumber(ARGV[2]) and current[2] == ARGV[3] and current[3] == ARGV[4] then
  return 2
end
return 0`,
);

/** KEYS[1] lock. ARGV: owner, ttl ms. 1 = taken, or already held by owner (TTL extended); 0 = held by another. */
export const ACQUIRE_LOCK = script(
  'acquireLock',
  `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`,
);

/** KEYS[1] lock. ARGV: owner, ttl ms. 1 = extended; 0 = not held by owner (expired or taken over). */
export const RENEW_LOCK = script(
  'renewLock',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`,
);

/** KEYS[1] lock. ARGV: owner. Deletes the lock only if owner holds it. */
export const RELEASE_LOCK = script(
  'releaseLock',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
);
