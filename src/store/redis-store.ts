/**
 * Token store shared by many replicas through Redis (standalone, Sentinel or Cluster). What it guarantees:
 * ARCHITECTURE.md ("What each store guarantees"); how to run it: docs/redis.md.
 *
 * - read: HMGET of the record hash, then decode (and decrypt, with an encryptionKey).
 * - compareAndSet: a Lua script compares the clear-text generation field with the expected one (the
 *   generation is the fencing token), writes and PUBLISHes `{key, generation}` on a match. If the record
 *   already is exactly this write (same generation, writer and digest), the reply of an earlier attempt
 *   was lost and the answer is 'applied', not 'stale'.
 * - Locks: `SET lock owner NX PX ttl` in a script that also extends a lock the owner already holds;
 *   renew and release compare the owner first.
 * - subscribe: pub/sub on its own connection. When that connection is replaced after a loss, every key this
 *   store has seen (read, written, locked or announced) is announced again with its current stored
 *   generation (0 when the record is gone), even if unchanged, and onEvent('resync', {keys}) reports it: a
 *   listener that re-reads on a generation other than its own catches up on whatever it missed, or writes
 *   back a record Redis lost.
 * - Every operation fails within 2 x commandTimeoutMs with a StoreError naming the endpoint, operation
 *   and key, never record contents or a password (see redis/connections.ts for the ioredis settings).
 */
import { formatHostPort } from '../net/endpoint.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { StoreError } from '../errors.js';
import { ChangeSubscriber } from './redis/change-subscriber.js';
import {
  closeClient,
  createCommandClient,
  describeTopology,
  reasonOf,
  RECONNECT_DELAY_CAP_MS,
  subscriberOptions,
  throttledConnectionErrors,
  watchCommandClient,
  withDeadline,
} from './redis/connections.js';
import { keyLayout } from './redis/keys.js';
import { ACQUIRE_LOCK, COMPARE_AND_SET, RELEASE_LOCK, RENEW_LOCK, type LuaScript } from './redis/lua-scripts.js';
import { resolveRedisStoreOptions, type RedisStoreOptions } from './redis/options.js';
import { createRecordCodec } from './redis/record-codec.js';
import { ChangeFeed } from './lock-table.js';
import type { CompareAndSetResult, TokenRecord, TokenStore } from './token-store.js';

/** Replies that mean the credentials are wrong, not that Redis is still starting. */
const AUTHENTICATION_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password|NOPERM/i;
export type { RedisAddress, RedisStoreEvent, RedisStoreEventListener, RedisStoreOptions } from './redis/options.js';

const RESYNC_ATTEMPTS = 3;

export async function createRedisStore(input: RedisStoreOptions): Promise<TokenStore> {
  const options = resolveRedisStoreOptions(input);
  const { onEvent, keyPrefix } = options;
  const keys = keyLayout(keyPrefix);
  const codec = createRecordCodec(options.encryptionKey, keys);
  const target = describeTopology(options);
  const operationDeadline = 2 * options.commandTimeoutMs;
  const feed = new ChangeFeed();
  /** Keys to announce again after the subscriber was away. */
  const knownKeys = new Set<string>();
  const pending = new Set<Promise<unknown>>();
  let closed = false;

  const reportError = throttledConnectionErrors(onEvent);
  const commands = createCommandClient(options);
  watchCommandClient(commands, target, onEvent, reportError);

  /** The target, and for Sentinel the master it currently resolves to. */
  const endpoint = (): string => {
    if (options.topology.kind !== 'sentinel') return target;
    const stream = (commands as Redis).status === 'ready' ? (commands as Redis).stream : undefined;
    return stream?.remoteAddress
      ? `${target} (master ${formatHostPort({ host: stream.remoteAddress, port: stream.remotePort ?? 0 })})`
      : target;
  };

  /** Runs one store operation under the deadline, turning every failure into a StoreError without record contents. */
  function run<T>(operation: string, key: string | undefined, task: () => Promise<T>): Promise<T> {
    const fail = (error: unknown): never => {
      const message = `${endpoint()}: ${operation}${key === undefined ? '' : ` ${key}`} failed: ${reasonOf(error)}`;
      // ioredis errors carry the command's arguments (record blobs): never chain them as the cause.
      // A record that does not decode is not cured by waiting; a timeout or a lost connection may be.
      throw new StoreError(message, error instanceof StoreError ? { cause: error, retryable: error.retryable } : { retryable: true });
    };
    if (closed) return Promise.reject(new StoreError(`${target}: ${operation} after the store was closed`));
    let started: Promise<T>;
    try {
      started = task(); // sends the command now, so that close() finds it ahead of QUIT
    } catch (error) {
      return Promise.reject(new StoreError(`${target}: ${operation} failed: ${reasonOf(error)}`, { retryable: true }));
    }
    const operationPromise = withDeadline(started, operationDeadline).catch(fail);
    pending.add(operationPromise);
    const forget = () => pending.delete(operationPromise);
    operationPromise.then(forget, forget);
    return operationPromise;
  }

  async function runScript(script: LuaScript, key: string, args: (string | number)[]): Promise<number> {
    try {
      return Number(await commands.evalsha(script.sha, 1, key, ...args));
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return Number(await commands.eval(script.lua, 1, key, ...args));
    }
  }

  function onMessage(channel: string, message: string): void {
    let change: { key?: unknown; generation?: unknown } | undefined;
    try {
      change = JSON.parse(message) as typeof change;
    } catch {
      change = undefined;
    }
    const key = change?.key;
    const generation = change?.generation;
    if (typeof key !== 'string' || !Number.isSafeInteger(generation) || !channelMatches(channel, key)) {
      onEvent('bad-message', { channel });
      return;
    }
    knownKeys.add(key);
    feed.publish(key, generation as number);
  }

  function channelMatches(channel: string, key: string): boolean {
    try {
      return keys.channel(key) === channel;
    } catch {
      return false;
    }
  }

  /** After the subscriber was away: announce the stored generation of every known key. */
  async function resync(): Promise<void> {
    const announced: string[] = [];
    const resyncKey = async (key: string): Promise<void> => {
      for (let attempt = 1; attempt <= RESYNC_ATTEMPTS && !closed; attempt++) {
        try {
          const generation = await run('resync', key, () => commands.hget(keys.record(key), 'generation'));
          // 0: the record is gone (a Redis restarted without persistence); whoever holds it writes it back.
          feed.publish(key, generation === null ? 0 : Number(generation));
          announced.push(key);
          return;
        } catch (error) {
          // The command connection may come back a moment after the subscriber.
          if (attempt === RESYNC_ATTEMPTS) onEvent('resync-failed', { key, reason: reasonOf(error) });
          else await sleep(RECONNECT_DELAY_CAP_MS);
        }
      }
    };
    // In parallel: in a Cluster, keys on a dead master must not hold up the others.
    await Promise.all([...knownKeys].map(resyncKey));
    if (!closed) onEvent('resync', { keys: announced });
  }

  const subscriber = new ChangeSubscriber({
    pattern: keys.changePattern,
    connectionOptions: subscriberOptions(options, commands),
    endpointOf: (connection) =>
      options.topology.kind === 'sentinel' ? target : formatHostPort({ host: connection.host ?? '', port: connection.port ?? 0 }),
    commandTimeoutMs: options.commandTimeoutMs,
    onMessage,
    onResubscribed: () => {
      resync().catch(() => {
        // resync reports its own failures through onEvent
      });
    },
    onEvent,
    reportError,
  });

  // connect() itself only says "Connection is closed."; the reason (ECONNREFUSED, WRONGPASS…) comes as an event.
  let connectError: Error | undefined;
  const noteConnectError = (error: Error): void => {
    connectError = error;
  };
  commands.on('error', noteConnectError);
  try {
    await withDeadline(commands.connect(), 3 * operationDeadline);
  } catch (error) {
    commands.disconnect();
    await subscriber.close();
    const reason = reasonOf(connectError ?? error);
    // Not up yet (a pod starting beside its Redis) is worth waiting for; a refused password is not.
    throw new StoreError(`cannot connect to ${target}: ${reason}`, { retryable: !AUTHENTICATION_FAILURE.test(reason) });
  } finally {
    commands.off('error', noteConnectError);
  }
  try {
    await verifyEncryptionKey();
    await subscriber.start().catch((error: unknown) => {
      throw new StoreError(`cannot subscribe to record changes on ${target}: ${reasonOf(error)}`, { retryable: true });
    });
  } catch (error) {
    await subscriber.close();
    await closeClient(commands, options.commandTimeoutMs);
    throw error;
  }

  /**
   * With an encryptionKey, the prefix carries a key-check entry sealed with the first encryptionKey used on
   * it: a replica started with another key fails here, at start-up, instead of failing every read later.
   */
  async function verifyEncryptionKey(): Promise<void> {
    let stored = await run('key check', undefined, () => commands.get(keys.keyCheck));
    if (!codec.encrypted) {
      if (stored !== null)
        throw new StoreError(
          `${target}: the token records under prefix "${keyPrefix}" are encrypted (${keys.keyCheck} exists) but no encryptionKey is set`,
        );
      return;
    }
    if (stored === null) {
      const written = await run('key check', undefined, () => commands.set(keys.keyCheck, codec.keyCheckValue(), 'NX'));
      if (written === 'OK') return;
      stored = await run('key check', undefined, () => commands.get(keys.keyCheck)); // another replica was first
    }
    if (stored === null || !codec.verifyKeyCheck(stored)) {
      throw new StoreError(
        `${target}: encryptionKey does not match the key the token records under prefix "${keyPrefix}" were encrypted with (${keys.keyCheck} does not decrypt)`,
      );
    }
  }

  return {
    description: `${target}, prefix "${keyPrefix}"${codec.encrypted ? ', records encrypted' : ''}`,
    read(key) {
      return run('read', key, async (): Promise<TokenRecord | undefined> => {
        const recordKey = keys.record(key);
        knownKeys.add(key);
        const [generation, blob] = await commands.hmget(recordKey, 'generation', 'blob');
        if ((generation ?? null) === null && (blob ?? null) === null) return undefined;
        if (!generation || !blob)
          throw new StoreError(`the token record for ${key} is incomplete (no generation or no blob); it is left untouched`);
        return codec.decode(key, generation, blob);
      });
    },
    compareAndSet(key, expectedGeneration, next): Promise<CompareAndSetResult> {
      return run('compareAndSet', key, async () => {
        const recordKey = keys.record(key);
        knownKeys.add(key);
        const { blob, digest } = codec.encode(key, next);
        const message = JSON.stringify({ key, generation: next.generation });
        const outcome = await runScript(COMPARE_AND_SET, recordKey, [
          expectedGeneration,
          next.generation,
          next.writer,
          digest,
          blob,
          keys.channel(key),
          message,
        ]);
        if (outcome === 2) onEvent('already-applied', { key, generation: next.generation });
        if (outcome === 0) return 'stale';
        if (outcome === 1 || outcome === 2) return 'applied';
        throw new StoreError(`unexpected reply ${outcome} from the compare-and-set script`);
      });
    },
    acquireLock(key, owner, ttlMs) {
      return run('acquireLock', key, async () => {
        checkTtl(ttlMs);
        knownKeys.add(key);
        return (await runScript(ACQUIRE_LOCK, keys.lock(key), [owner, ttlMs])) === 1;
      });
    },
    renewLock(key, owner, ttlMs) {
      return run('renewLock', key, async () => {
        checkTtl(ttlMs);
        return (await runScript(RENEW_LOCK, keys.lock(key), [owner, ttlMs])) === 1;
      });
    },
    releaseLock(key, owner) {
      return run('releaseLock', key, async () => {
        await runScript(RELEASE_LOCK, keys.lock(key), [owner]);
      });
    },
    subscribe: (listener) => feed.subscribe(listener),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...pending]); // each is bounded by the operation deadline
      await subscriber.close();
      commands.removeAllListeners('close'); // closing is not a lost connection worth an event
      await closeClient(commands, options.commandTimeoutMs);
    },
  };
}

function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new StoreError(`lock TTL must be a positive integer of milliseconds, got ${ttlMs}`);
}
