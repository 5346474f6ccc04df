/**
 * The shared TokenStore contract against the Redis store on real redis-server processes: standalone, a
 * Sentinel setup (1 master, 1 replica, 3 sentinels) and a 3-master Cluster. Each setup starts once per
 * describe block; every store gets its own key prefix, so tests never see each other's records, locks or
 * change messages.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import { cleanupAfterAll, startRedis, startRedisCluster, startSentinelSetup, type ClusterSetup, type RedisProcess, type RegisterCleanup, type SentinelSetup } from '../helpers/redis-server.js';
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
        expect((await raw.keys(`*${options.keyPrefix}*`)).sort()).toEqual([`{${options.keyPrefix}collaborate}:lock`, `{${options.keyPrefix}collaborate}:record`]);
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
  describeTokenStoreContract('redis cluster', async () => createRedisStore({ cluster: (await setup()).addresses, keyPrefix: uniquePrefix() }));

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
