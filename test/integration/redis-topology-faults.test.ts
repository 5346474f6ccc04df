/**
 * The Redis store when a node of a Sentinel setup or a Cluster dies: it fails fast while it cannot reach the
 * credential's master, writes to the new master after a failover, and keeps hearing about changes through
 * a subscriber that moves to a live node and re-announces what it may have missed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { createRedisStore } from '../../src/store/redis-store.js';
import { tokenRecord } from '../contract/token-store.contract.js';
import { cleanupAfterAll, startRedisCluster, startSentinelSetup } from '../helpers/redis-server.js';

const KEY = 'collaborate';
/** The default commandTimeoutMs is 500: a store operation fails within 2x that. */
const OPERATION_BOUND_MS = 1_000;
const SLACK_MS = 150;

/** How long `operation` took to fail, and with what; resolves to 'applied' when it succeeded. */
async function timeFailure(operation: () => Promise<unknown>): Promise<{ ms: number; error: Error } | 'applied'> {
  const started = performance.now();
  try {
    await operation();
    return 'applied';
  } catch (error) {
    return { ms: Math.round(performance.now() - started), error: error as Error };
  }
}

describe('redis store: topology faults', () => {
  const topologyCleanup = cleanupAfterAll();

  it('Sentinel: fails fast during a failover, then writes to the new master and resyncs the subscriber', async () => {
    const setup = await startSentinelSetup(topologyCleanup);
    const events: [string, Record<string, unknown>][] = [];
    const store = await createRedisStore({
      sentinels: setup.sentinelAddresses,
      name: setup.name,
      keyPrefix: 'failover:',
      onEvent: (event, detail) => events.push([event, detail]),
    });
    onTestFinished(() => store.close());
    const seen: [string, number][] = [];
    onTestFinished(store.subscribe((key, generation) => seen.push([key, generation])));
    await store.compareAndSet(KEY, 0, tokenRecord(1));
    await setup.master.cli('WAIT', '1', '2000');

    await setup.master.kill();
    const killed = performance.now();
    let slowestFailure = 0;
    let failures = 0;
    for (;;) {
      const started = performance.now();
      const result = await store.read(KEY).catch((error: unknown) => error as Error);
      if (!(result instanceof Error)) break;
      expect(result.message).toMatch(/^redis sentinel master "mymaster" via .*: read collaborate failed: /);
      slowestFailure = Math.max(slowestFailure, performance.now() - started);
      failures += 1;
      expect(performance.now() - killed).toBeLessThan(15_000);
      await sleep(50);
    }
    console.info(
      `sentinel failover: store usable again ${Math.round(performance.now() - killed)} ms after the master died; ${failures} reads failed, slowest in ${Math.round(slowestFailure)} ms`,
    );
    expect(slowestFailure).toBeLessThan(OPERATION_BOUND_MS + SLACK_MS);
    expect(await setup.currentMaster()).toEqual({ host: '127.0.0.1', port: setup.replica.port });
    expect(store.description).toContain('sentinel master "mymaster"');
    expect(await store.read(KEY)).toEqual(tokenRecord(1));
    expect(await store.compareAndSet(KEY, 1, tokenRecord(2))).toBe('applied');
    expect(await setup.replica.cli('HGET', `{failover:${KEY}}:record`, 'generation')).toBe('2');
    await vi.waitFor(() => expect(seen).toContainEqual([KEY, 2]), { timeout: 5_000, interval: 20 });
    await vi.waitFor(() => expect(events.map(([event]) => event)).toContain('resync'), { timeout: 5_000, interval: 20 });
  });

  it('Cluster: a dead subscriber node is replaced by another node; keys on the live masters keep working', async () => {
    const cluster = await startRedisCluster(topologyCleanup);
    const events: [string, Record<string, unknown>][] = [];
    const store = await createRedisStore({
      cluster: cluster.addresses,
      keyPrefix: 'cluster-faults:',
      onEvent: (event, detail) => events.push([event, detail]),
    });
    onTestFinished(() => store.close());
    const seen: [string, number][] = [];
    onTestFinished(store.subscribe((key, generation) => seen.push([key, generation])));
    const credentials = Array.from({ length: 9 }, (_, i) => `upstream-${i}`);
    for (const key of credentials) await store.compareAndSet(key, 0, tokenRecord(1));

    const lists = await Promise.all(cluster.nodes.map((node) => node.cli('CLIENT', 'LIST')));
    const subscriberNode = cluster.nodes[lists.findIndex((list) => list.includes('name=oauth-sidecar:changes'))]!;
    await subscriberNode.kill();
    // Keys on the dead master cannot be re-read: 3 attempts, then 'resync-failed' for them and 'resync' for the rest.
    await vi.waitFor(() => expect(events.map(([event]) => event)).toContain('resync'), { timeout: 8_000, interval: 20 });
    const resynced = events.find(([event]) => event === 'resync')?.[1].keys as string[];
    const unreachable = events.filter(([event]) => event === 'resync-failed').map(([, detail]) => detail.key);
    expect([...resynced, ...unreachable].sort()).toEqual([...credentials].sort());
    expect(unreachable.length).toBeGreaterThan(0);
    const reconnected = events.find(([event, detail]) => event === 'reconnected' && detail.connection === 'subscriber');
    expect(reconnected?.[1].endpoint).not.toBe(`127.0.0.1:${subscriberNode.port}`);

    // Credentials on the dead master fail within the bound; the others are written and announced.
    const outcomes = await Promise.all(credentials.map((key) => timeFailure(() => store.compareAndSet(key, 1, tokenRecord(2)))));
    const failed = outcomes.filter((outcome) => outcome !== 'applied');
    for (const outcome of failed) expect(outcome.error.message).toMatch(/^redis cluster .*: compareAndSet upstream-\d failed: /);
    for (const outcome of failed) expect(outcome.ms).toBeLessThan(OPERATION_BOUND_MS + SLACK_MS);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(credentials.length);
    await vi.waitFor(() => expect(seen.filter(([, generation]) => generation === 2)).toHaveLength(credentials.length - failed.length), {
      timeout: 3_000,
      interval: 20,
    });
  });
});
