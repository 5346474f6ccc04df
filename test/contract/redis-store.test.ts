/**
 * The shared TokenStore contract against the Redis store on real redis-server processes: standalone, a
 * Sentinel setup (1 master, 1 replica, 3 sentinels) and a 3-master Cluster. Each setup starts once per
 * describe block; every store gets its own key prefix, so tests never see each other's records, locks or
 * change messages.
 */
import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Redis } from 'ioredis';
import { StoreError } from '../../src/errors.js';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import {
  cleanupAfterAll,
  startRedis,
  startRedisCluster,
  startSentinelSetup,
  type ClusterSetup,
  type RedisProcess,
  type RegisterCleanup,
  type SentinelSetup,
} from '../helpers/redis-server.js';
import { describeTokenStoreContract, tokenRecord } from './token-store.contract.js';

const uniquePrefix = (): string => `contract-${randomUUID()}:`;

/** A setup started once for the describe block it is called in; its processes are killed after the block. */
function startedBeforeAll<T>(start: (register: RegisterCleanup) => Promise<T>): () => Promise<T> {
  const register = cleanupAfterAll();
  let started: Promise<T> | undefined;
  beforeAll(async () => {
    started = start(register);
    await started;
  });
  return () => started ?? Promise.reject(new Error('setup not started'));
}

describe('redis standalone', () => {
  const server = startedBeforeAll<RedisProcess>(startRedis);
  const storeOptions = async (): Promise<RedisStoreOptions> => ({ url: `${(await server()).url}/0`, keyPrefix: uniquePrefix() });

  describeTokenStoreContract('redis standalone', async () => createRedisStore(await storeOptions()));
  describeTokenStoreContract('redis standalone, encrypted', async () =>
    createRedisStore({ ...(await storeOptions()), encryptionKey: Buffer.alloc(32, 7) }),
  );

  it('keeps its records under the hash-tagged keys of its prefix, in database 0 only', async () => {
    const options = await storeOptions();
    const store = await createRedisStore(options);
    try {
      await store.compareAndSet('collaborate', 0, tokenRecord(1));
      await store.acquireLock('collaborate', 'replica-a', 30_000);
      const raw = new Redis((await server()).port, '127.0.0.1', { lazyConnect: true });
      await raw.connect();
      try {
        expect((await raw.keys(`*${options.keyPrefix}*`)).sort()).toEqual([
          `{${options.keyPrefix}collaborate}:lock`,
          `{${options.keyPrefix}collaborate}:record`,
        ]);
        expect(await raw.hget(`{${options.keyPrefix}collaborate}:record`, 'generation')).toBe('1');
        expect(await raw.get(`{${options.keyPrefix}collaborate}:lock`)).toBe('replica-a');
      } finally {
        raw.disconnect();
      }
    } finally {
      await store.close();
    }
  });
});

/**
 * A record as the store sealed it before v2, written out here independently of the codec: AES-256-GCM,
 * 12-byte nonce, `v1.<nonce>.<ciphertext+tag>`, associated data `<store key>:<generation>` (no prefix).
 */
function legacySealedRecord(encryptionKey: Buffer, key: string, record: TokenRecord): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey, nonce);
  cipher.setAAD(Buffer.from(`${key}:${record.generation}`, 'utf8'));
  const sealed = Buffer.concat([cipher.update(JSON.stringify(record), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `v1.${nonce.toString('base64')}.${sealed.toString('base64')}`;
}

describe('redis standalone, encrypted records and their Redis key', () => {
  const server = startedBeforeAll<RedisProcess>(startRedis);
  const encryptionKey = Buffer.alloc(32, 9);
  const openStore = async (keyPrefix = uniquePrefix()) => {
    const store = await createRedisStore({ url: `${(await server()).url}/0`, keyPrefix, encryptionKey });
    onTestFinished(() => store.close());
    return { store, keyPrefix };
  };
  const rawClient = async () => {
    const raw = new Redis((await server()).port, '127.0.0.1', { lazyConnect: true });
    await raw.connect();
    onTestFinished(() => raw.disconnect());
    return raw;
  };

  it("a record copied to another deployment's key prefix does not decrypt there under the same encryptionKey", async () => {
    const a = await openStore();
    const b = await openStore();
    await a.store.compareAndSet('collaborate', 0, tokenRecord(1));
    const raw = await rawClient();
    const copied = await raw.hgetall(`{${a.keyPrefix}collaborate}:record`);
    expect(copied.blob).toMatch(/^v2\./);
    await raw.hset(`{${b.keyPrefix}collaborate}:record`, copied);

    const refused = await b.store.read('collaborate').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StoreError);
    expect((refused as Error).message).toMatch(/cannot decrypt the token record for collaborate: wrong encryptionKey or tampered data$/);
    // Refused, not crashed: the same store still reads and writes its other records, and the original still reads.
    expect(await b.store.read('apiax')).toBeUndefined();
    expect(await b.store.compareAndSet('apiax', 0, tokenRecord(1))).toBe('applied');
    expect(await a.store.read('collaborate')).toEqual(tokenRecord(1));
  });

  it('still reads a record written in the v1 format, and its next write stores it as v2', async () => {
    const { store, keyPrefix } = await openStore();
    const raw = await rawClient();
    const recordKey = `{${keyPrefix}collaborate}:record`;
    const old = tokenRecord(1);
    await raw.hset(recordKey, {
      generation: '1',
      writer: old.writer,
      digest: 'written-by-v1',
      blob: legacySealedRecord(encryptionKey, 'collaborate', old),
    });

    expect(await store.read('collaborate')).toEqual(old);
    expect(await store.compareAndSet('collaborate', 1, tokenRecord(2))).toBe('applied');
    expect(await raw.hget(recordKey, 'blob')).toMatch(/^v2\./);
    expect(await store.read('collaborate')).toEqual(tokenRecord(2));
  });
});

describe('redis sentinel', () => {
  const setup = startedBeforeAll<SentinelSetup>((register) => startSentinelSetup(register));
  describeTokenStoreContract('redis sentinel', async () => {
    const { sentinelAddresses, name } = await setup();
    return createRedisStore({ sentinels: sentinelAddresses, name, keyPrefix: uniquePrefix() });
  });

  it('writes to the master the sentinels name, and the replica follows', async () => {
    const { sentinelAddresses, name, master, replica } = await setup();
    const prefix = uniquePrefix();
    const store = await createRedisStore({ sentinels: sentinelAddresses, name, keyPrefix: prefix });
    try {
      expect(store.description).toContain('sentinel master "mymaster"');
      await store.compareAndSet('collaborate', 0, tokenRecord(1));
      expect(await master.cli('HGET', `{${prefix}collaborate}:record`, 'generation')).toBe('1');
      await master.cli('WAIT', '1', '2000');
      expect(await replica.cli('HGET', `{${prefix}collaborate}:record`, 'generation')).toBe('1');
    } finally {
      await store.close();
    }
  });
});

describe('redis cluster', () => {
  const setup = startedBeforeAll<ClusterSetup>(startRedisCluster);
  describeTokenStoreContract('redis cluster', async () =>
    createRedisStore({ cluster: (await setup()).addresses, keyPrefix: uniquePrefix() }),
  );

  it('puts record and lock of one credential in one slot, and spreads credentials over the masters', async () => {
    const { addresses, nodes } = await setup();
    const prefix = uniquePrefix();
    const store = await createRedisStore({ cluster: addresses, keyPrefix: prefix });
    try {
      const credentials = Array.from({ length: 12 }, (_, i) => `upstream-${i}`);
      for (const key of credentials) {
        expect(await store.compareAndSet(key, 0, tokenRecord(1))).toBe('applied');
        expect(await store.acquireLock(key, 'replica-a', 30_000)).toBe(true);
      }
      const mastersUsed = new Set<number>();
      for (const key of credentials) {
        const recordSlot = await nodes[0]!.cli('CLUSTER', 'KEYSLOT', `{${prefix}${key}}:record`);
        expect(await nodes[0]!.cli('CLUSTER', 'KEYSLOT', `{${prefix}${key}}:lock`)).toBe(recordSlot);
        for (const [index, node] of nodes.entries()) {
          if ((await node.cli('CLUSTER', 'COUNTKEYSINSLOT', recordSlot)) !== '0') mastersUsed.add(index);
        }
        expect((await store.read(key))?.generation).toBe(1);
      }
      expect(mastersUsed.size).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });
});
