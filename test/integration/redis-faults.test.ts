/**
 * The Redis store under faults, against a real redis-server (with a password, so that the tests also see
 * that it never reaches a message): Redis killed and restarted, frozen with SIGSTOP, a reply lost after
 * Redis ran the command, the subscriber connection dropped, records encrypted at rest and tampered with,
 * and start-up problems. The measured figures are printed (console.info) for the README.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { tokenRecord } from '../contract/token-store.contract.js';
import { refusingPort } from '../helpers/ports.js';
import { cleanupAfterAll, startRedis, type RedisProcess } from '../helpers/redis-server.js';

const KEY = 'collaborate';
const PASSWORD = 'redis-pass-7f3a9c';
/** The default commandTimeoutMs: one command fails after 500 ms; a store operation always within 2x that. */
const COMMAND_TIMEOUT_MS = 500;
const OPERATION_BOUND_MS = 2 * COMMAND_TIMEOUT_MS;
const SLACK_MS = 150;
const KEY_A = Buffer.alloc(32, 0xa1);
const KEY_B = Buffer.alloc(32, 0xb2);

const register = cleanupAfterAll();
let server: RedisProcess;
beforeAll(async () => {
  server = await startRedis(register, { password: PASSWORD });
});

const url = (): string => `redis://:${PASSWORD}@127.0.0.1:${server.port}/0`;
const endpoint = (): string => `redis 127.0.0.1:${server.port}/0`;

interface OpenedStore {
  store: TokenStore;
  events: [string, Record<string, unknown>][];
  prefix: string;
}

async function openStore(options: Partial<RedisStoreOptions> = {}): Promise<OpenedStore> {
  const events: [string, Record<string, unknown>][] = [];
  const prefix = options.keyPrefix ?? `faults-${randomUUID()}:`;
  const store = await createRedisStore({
    url: url(),
    keyPrefix: prefix,
    onEvent: (event, detail) => events.push([event, detail]),
    ...options,
  });
  onTestFinished(() => store.close());
  return { store, events, prefix };
}

/** A plain client for looking at (and tampering with) raw keys. */
async function rawClient(): Promise<Redis> {
  const raw = new Redis({ port: server.port, host: '127.0.0.1', password: PASSWORD, lazyConnect: true });
  onTestFinished(() => raw.disconnect());
  await raw.connect();
  return raw;
}

/** How long `operation` took to fail, and with what; a success fails the test. */
async function timeFailure(operation: () => Promise<unknown>): Promise<{ ms: number; error: Error }> {
  const started = performance.now();
  const error = await operation().then(
    () => {
      throw new Error('the operation succeeded although Redis cannot answer');
    },
    (caught: unknown) => caught as Error,
  );
  return { ms: Math.round(performance.now() - started), error };
}

function expectCleanStoreError(error: Error, operation: string): void {
  expect(error).toBeInstanceOf(StoreError);
  expect(error.message).toContain(`${endpoint()}: ${operation} ${KEY} failed`);
  expect(error.message).not.toContain(PASSWORD);
  expect(error.message).not.toMatch(/access-|refresh-/);
}

function allOperations(store: TokenStore): [string, () => Promise<unknown>][] {
  return [
    ['read', () => store.read(KEY)],
    ['compareAndSet', () => store.compareAndSet(KEY, 7, tokenRecord(8))],
    ['acquireLock', () => store.acquireLock(KEY, 'replica-a', 30_000)],
    ['renewLock', () => store.renewLock(KEY, 'replica-a', 30_000)],
    ['releaseLock', () => store.releaseLock(KEY, 'replica-a')],
  ];
}

describe('redis store: Redis down or frozen', () => {
  it('fails every operation fast while Redis is killed (also one in flight), and recovers after a restart', async () => {
    const { store } = await openStore();
    await store.compareAndSet(KEY, 0, tokenRecord(1));

    // A read already sent when the process dies: frozen first, so the command sits unanswered.
    server.pause();
    const inFlight = timeFailure(() => store.read(KEY));
    await sleep(50);
    await server.kill();
    const dying = await inFlight;
    expectCleanStoreError(dying.error, 'read');
    expect(dying.ms).toBeLessThan(OPERATION_BOUND_MS + SLACK_MS);

    const down: Record<string, number> = {};
    for (const [operation, run] of allOperations(store)) {
      const { ms, error } = await timeFailure(run);
      expectCleanStoreError(error, operation);
      expect(ms).toBeLessThan(OPERATION_BOUND_MS + SLACK_MS);
      down[operation] = ms;
    }
    console.info(`redis killed: in-flight read failed after ${dying.ms} ms (${dying.error.message}); while down:`, down);

    await server.restart();
    const restarted = performance.now();
    // The data is gone (no persistence in tests); the store must simply work again within the 1 s backoff cap.
    await vi.waitFor(async () => expect(await store.compareAndSet(KEY, 0, tokenRecord(1))).toBe('applied'), {
      timeout: 3_000,
      interval: 25,
    });
    console.info(`redis restarted: store working again after ${Math.round(performance.now() - restarted)} ms`);
    expect(await store.read(KEY)).toEqual(tokenRecord(1));
  });

  it('fails every operation within the bound while Redis is frozen (SIGSTOP), and answers right after SIGCONT', async () => {
    const { store } = await openStore();
    const quick = await openStore({ commandTimeoutMs: 150 });
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    server.pause();
    onTestFinished(() => server.resume());

    const frozen = await Promise.all(allOperations(store).map(async ([operation, run]) => ({ operation, ...(await timeFailure(run)) })));
    for (const { operation, ms, error } of frozen) {
      expectCleanStoreError(error, operation);
      expect(error.message).toMatch(/Command timed out|no reply within/);
      // ioredis's commandTimeout, not an immediate refusal, and not only the store's second net.
      expect(ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
      expect(ms).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS);
    }
    const quickRead = await timeFailure(() => quick.store.read(KEY));
    expect(quickRead.ms).toBeLessThan(150 + SLACK_MS);
    console.info(
      'redis frozen (SIGSTOP), default commandTimeoutMs 500:',
      Object.fromEntries(frozen.map((f) => [f.operation, f.ms])),
      `; commandTimeoutMs 150: read ${quickRead.ms} ms`,
    );

    server.resume();
    const resumed = performance.now();
    expect(await store.read(KEY)).toEqual(tokenRecord(1));
    expect(performance.now() - resumed).toBeLessThan(200);
  });

  it('closes within the bound while Redis is frozen', async () => {
    const store = await createRedisStore({ url: url(), keyPrefix: `faults-${randomUUID()}:` });
    server.pause();
    onTestFinished(() => server.resume());
    const started = performance.now();
    await store.close();
    expect(performance.now() - started).toBeLessThan(2 * OPERATION_BOUND_MS);
  });
});

describe('redis store: idempotent scripts (a reply lost after Redis ran the command)', () => {
  for (const encrypted of [false, true]) {
    it(`a commit that finds its own write already stored is 'applied', anything else 'stale'${encrypted ? ' (encrypted)' : ''}`, async () => {
      const { store, events } = await openStore(encrypted ? { encryptionKey: KEY_A } : {});
      await store.compareAndSet(KEY, 0, tokenRecord(1));
      const next = tokenRecord(2, { writer: 'replica-a' });

      // Frozen: the script is sent, times out here, and runs when Redis continues. Its reply is lost to us.
      server.pause();
      const lost = await timeFailure(() => store.compareAndSet(KEY, 1, next));
      server.resume();
      expectCleanStoreError(lost.error, 'compareAndSet');
      await vi.waitFor(async () => expect((await store.read(KEY))?.generation).toBe(2), { timeout: 2_000, interval: 20 });

      // The caller retries the same write: it is already there, so it succeeded.
      expect(await store.compareAndSet(KEY, 1, next)).toBe('applied');
      expect(events).toContainEqual(['already-applied', { key: KEY, generation: 2 }]);
      // Another writer of generation 2, or other tokens under the same writer, did not win.
      expect(await store.compareAndSet(KEY, 1, tokenRecord(2, { writer: 'replica-b' }))).toBe('stale');
      expect(await store.compareAndSet(KEY, 1, tokenRecord(2, { writer: 'replica-a', accessToken: 'other' }))).toBe('stale');
      expect(await store.read(KEY)).toEqual(next);
    });
  }

  it('acquiring a lock you already hold succeeds, also after the reply of the first attempt was lost', async () => {
    const { store } = await openStore();
    // Loaded first, so that the frozen attempt is an EVALSHA the server can run (not a NOSCRIPT).
    expect(await store.acquireLock('other', 'replica-a', 30_000)).toBe(true);
    server.pause();
    const lost = await timeFailure(() => store.acquireLock(KEY, 'replica-a', 30_000));
    server.resume();
    expectCleanStoreError(lost.error, 'acquireLock');
    expect(await store.acquireLock(KEY, 'replica-b', 30_000)).toBe(false); // the lost attempt did take it
    expect(await store.acquireLock(KEY, 'replica-a', 30_000)).toBe(true);
    expect(await store.renewLock(KEY, 'replica-a', 30_000)).toBe(true);
  });
});

describe('redis store: pub/sub connection lost', () => {
  it('announces the stored generation of every known key once it is subscribed again, including a change it missed', async () => {
    const a = await openStore();
    const b = await openStore({ keyPrefix: a.prefix });
    await b.store.compareAndSet(KEY, 0, tokenRecord(1));
    await b.store.compareAndSet('apiax', 0, tokenRecord(1));
    expect(await a.store.read(KEY)).toEqual(tokenRecord(1));
    expect(await a.store.read('apiax')).toEqual(tokenRecord(1));
    const seen: [string, number][] = [];
    onTestFinished(a.store.subscribe((key, generation) => seen.push([key, generation])));

    // Drop both stores' subscriber connections; the new ones come 100 ms later, so this write is missed.
    await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await b.store.compareAndSet(KEY, 1, tokenRecord(2))).toBe('applied');
    await vi.waitFor(() => expect(a.events.map(([event]) => event)).toContain('resync'), { timeout: 3_000, interval: 20 });
    expect(seen).toEqual(
      expect.arrayContaining([
        [KEY, 2],
        ['apiax', 1],
      ]),
    );
    expect(a.events).toContainEqual(['disconnected', { connection: 'subscriber', endpoint: `127.0.0.1:${server.port}` }]);
    expect((a.events.find(([event]) => event === 'resync')?.[1].keys as string[]).sort()).toEqual(['apiax', KEY]);

    // And the new connection does receive messages.
    await b.store.compareAndSet(KEY, 2, tokenRecord(3));
    await vi.waitFor(() => expect(seen).toContainEqual([KEY, 3]));
  });
  it('replaces a subscriber connection that stops answering (heartbeat PING every 10 x commandTimeoutMs, at least 1 s)', async () => {
    const { store, events } = await openStore({ commandTimeoutMs: 100 });
    const seen: [string, number][] = [];
    onTestFinished(store.subscribe((key, generation) => seen.push([key, generation])));
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    await vi.waitFor(() => expect(seen).toEqual([[KEY, 1]]));
    server.pause();
    onTestFinished(() => server.resume());
    // Nothing is sent on an idle subscriber: only the heartbeat can notice the freeze.
    await vi.waitFor(
      () => expect(events).toContainEqual(['disconnected', { connection: 'subscriber', endpoint: `127.0.0.1:${server.port}` }]),
      { timeout: 2_500, interval: 20 },
    );
    server.resume();
    await vi.waitFor(() => expect(events.map(([event]) => event)).toContain('resync'), { timeout: 3_000, interval: 20 });
    expect(seen).toEqual([
      [KEY, 1],
      [KEY, 1],
    ]);
  });
});

describe('redis store: encryption at rest', () => {
  it('stores no token in clear text; every write has a new nonce; generation and writer stay readable for the CAS', async () => {
    const { store, prefix } = await openStore({ encryptionKey: KEY_A });
    const secret = tokenRecord(1, { accessToken: 'at-SECRET-0123456789', refreshToken: 'rt-SECRET-9876543210' });
    await store.compareAndSet(KEY, 0, secret);
    const raw = await rawClient();
    const first = await raw.hgetall(`{${prefix}${KEY}}:record`);
    await store.compareAndSet(KEY, 1, secret); // an annotation: same record again
    const second = await raw.hgetall(`{${prefix}${KEY}}:record`);
    const everything = JSON.stringify([first, second, await raw.get(`{${prefix}}:key-check`)]);
    expect(everything).not.toContain('SECRET');
    expect(everything).not.toContain(Buffer.from('at-SECRET').toString('base64').slice(0, 8));
    expect(first).toMatchObject({ generation: '1', writer: 'replica-a' });
    expect(first.blob).toMatch(/^v2\.[A-Za-z0-9+/]{16}\.[A-Za-z0-9+/=]+$/);
    expect(second.blob).not.toBe(first.blob);
    expect(await store.read(KEY)).toEqual(secret);
  });

  it('refuses to start with another encryptionKey, or without one, on a prefix with encrypted records', async () => {
    const { store, prefix } = await openStore({ encryptionKey: KEY_A });
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    await expect(createRedisStore({ url: url(), keyPrefix: prefix, encryptionKey: KEY_B })).rejects.toThrow(
      /encryptionKey does not match the key the token records under prefix "faults-[^"]+" were encrypted with/,
    );
    await expect(createRedisStore({ url: url(), keyPrefix: prefix })).rejects.toThrow(/are encrypted .* but no encryptionKey is set/);
  });

  it('rejects a record under a wrong key, a flipped byte or a moved generation with a clear StoreError, never garbage', async () => {
    const { store, prefix } = await openStore({ encryptionKey: KEY_A });
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    const raw = await rawClient();
    const recordKey = `{${prefix}${KEY}}:record`;
    const original = (await raw.hget(recordKey, 'blob')) ?? '';
    const decryptError =
      /: read collaborate failed: cannot decrypt the token record for collaborate: wrong encryptionKey or tampered data$/;

    // Wrong key past the start-up check (its key-check entry removed): the record itself does not decrypt.
    await raw.del(`{${prefix}}:key-check`);
    const wrongKey = await openStore({ keyPrefix: prefix, encryptionKey: KEY_B });
    await expect(wrongKey.store.read(KEY)).rejects.toThrow(decryptError);

    const [version, nonce, sealed] = original.split('.');
    for (let index = 0; index < Buffer.from(sealed!, 'base64').length; index += 7) {
      const bytes = Buffer.from(sealed!, 'base64');
      bytes[index] = bytes[index]! ^ 0x01;
      await raw.hset(recordKey, 'blob', `${version}.${nonce}.${bytes.toString('base64')}`);
      await expect(store.read(KEY)).rejects.toThrow(decryptError);
    }
    // The generation is associated data: a record moved to another generation does not decrypt either.
    await raw.hset(recordKey, 'blob', original, 'generation', '2');
    await expect(store.read(KEY)).rejects.toThrow(decryptError);
    await raw.hset(recordKey, 'generation', '1');
    expect(await store.read(KEY)).toEqual(tokenRecord(1));

    // A record planted in clear text is refused, not used.
    await raw.hset(recordKey, 'blob', JSON.stringify(tokenRecord(1, { accessToken: 'planted' })));
    const planted = await timeFailure(() => store.read(KEY));
    expect(planted.error.message).toMatch(/stored in clear text but encryptionKey is set/);
    expect(planted.error.message).not.toContain('planted');
  });
});

describe('redis store: error messages', () => {
  it('name endpoint, operation and key for an error from Redis itself, but never the record or the password', async () => {
    const { store, prefix } = await openStore();
    const raw = await rawClient();
    await raw.set(`{${prefix}${KEY}}:record`, 'not a hash');
    const write = await timeFailure(() =>
      store.compareAndSet(KEY, 0, tokenRecord(1, { accessToken: 'at-SECRET-1', refreshToken: 'rt-SECRET-1' })),
    );
    const read = await timeFailure(() => store.read(KEY));
    for (const [operation, { error }] of [
      ['compareAndSet', write],
      ['read', read],
    ] as const) {
      expectCleanStoreError(error, operation);
      expect(error.message).toMatch(/WRONGTYPE/);
      expect(error.message).not.toContain('SECRET');
      // ioredis errors carry the command with its arguments (the record): never chained as the cause.
      expect(error.cause).toBeUndefined();
    }
  });
});

describe('redis store: start-up', () => {
  it('reports every option problem at once, with hints', async () => {
    const error = await timeFailure(() =>
      createRedisStore({
        url: 'http://x',
        cluster: [{ host: '', port: 0 }],
        keyPrefix: 'a{b}',
        encryptionKey: Buffer.alloc(16),
        commandTimeoutMs: 0,
        prefix: 'x',
      } as RedisStoreOptions),
    );
    expect(error.error).toBeInstanceOf(StoreError);
    expect(error.error.message.split('\n').slice(1)).toEqual([
      '  - unknown option "prefix" (did you mean "keyPrefix"?)',
      '  - url, sentinels and cluster exclude each other; got url and cluster',
      '  - url must start with redis:// or rediss://, not http://',
      '  - cluster[0].host must be a non-empty string',
      '  - cluster[0].port must be an integer from 1 to 65535',
      '  - keyPrefix must not contain "{" or "}": the store wraps prefix and key in a Cluster hash tag',
      '  - encryptionKey must be a Buffer of 32 bytes (AES-256), got 16 bytes',
      '  - commandTimeoutMs must be an integer from 50 to 10000 (milliseconds)',
    ]);
    await expect(createRedisStore({ sentinels: [{ host: '127.0.0.1', port: 26379 }] })).rejects.toThrow(/sentinels need name/);
    await expect(createRedisStore({ keyPrefix: 'x:' })).rejects.toThrow(/one of url, sentinels or cluster is required/);
  });

  it('fails clearly and within the bound when nothing listens, the password is wrong, or Redis is frozen', async () => {
    const { port } = await refusingPort();
    const refused = await timeFailure(() => createRedisStore({ url: `redis://:${PASSWORD}@127.0.0.1:${port}` }));
    expect(refused.error.message).toMatch(new RegExp(`^cannot connect to redis 127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED`));
    expect(refused.ms).toBeLessThan(OPERATION_BOUND_MS);

    const wrongPassword = await timeFailure(() => createRedisStore({ url: `redis://:not-the-password@127.0.0.1:${server.port}` }));
    expect(wrongPassword.error.message).toMatch(new RegExp(`^cannot connect to ${endpoint()}: .*(WRONGPASS|invalid password)`));
    expect(wrongPassword.error.message).not.toContain('not-the-password');

    server.pause();
    onTestFinished(() => server.resume());
    const frozen = await timeFailure(() => createRedisStore({ url: url() }));
    server.resume();
    expect(frozen.error.message).toMatch(new RegExp(`^cannot connect to ${endpoint()}: `));
    expect(frozen.error.message).not.toContain(PASSWORD);
    expect(frozen.ms).toBeLessThan(4 * OPERATION_BOUND_MS);
    console.info(`start-up: refused after ${refused.ms} ms, frozen Redis after ${frozen.ms} ms (${frozen.error.message})`);
  });
});
