/**
 * A replica that starts before its Redis (a pod whose Redis is still being scheduled, a Redis restarting)
 * starts anyway, unready, and becomes ready by itself once Redis answers: no exit, so no crash loop and no
 * restart back-off in Kubernetes. A Redis that refuses the password is a configuration error and still
 * stops start-up. Real proxy processes, a real redis-server.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startProxyProcess, waitUntil } from '../helpers/proxy-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { ensureBuilt, runCli } from '../helpers/run-cli.js';
import { replicaConfig, standaloneStore, storedGeneration } from './replica-fixtures.js';
import { provider } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

describe('Redis not reachable at start-up', () => {
  it('starts unready with the reason, answers 503, then seeds, refreshes once and serves when Redis comes up', async () => {
    const redis = await startRedis(onTestFinished);
    await redis.kill(); // its port now refuses connections; restart() brings Redis back on it
    const fake = await provider({ kind: 'apiax' });
    const config = replicaConfig(standaloneStore(redis, 'late:'), [{ fake, options: { seed: fake.issueRefreshToken() } }]);

    const replica = await startProxyProcess(config, 'early-replica');
    const unready = await replica.readyz();
    expect(unready.status).toBe(503);
    expect(unready.body.notReady?.apiax?.state).toBe('starting');
    expect(unready.body.notReady?.apiax?.reason).toMatch(/token store .*ECONNREFUSED/);
    const refused = await fetch(`${replica.url}/apiax/x`);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/token store .*ECONNREFUSED/);
    expect(replica.events('store_unreachable').length).toBeGreaterThan(0);
    expect(fake.counters.tokenCalls).toBe(0);

    const redisBack = Date.now();
    await redis.restart();
    const readyAfterMs = await waitUntil('the replica to become ready', async () => (await replica.readyz()).status === 200, 15_000);
    expect((await fetch(`${replica.url}/apiax/x`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(1);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(await storedGeneration(redis, 'late:', 'apiax')).toBe(2); // the seed, then its one refresh
    expect(replica.cli.child.exitCode).toBeNull();
    // Log lines leave in batches (up to 250 ms late).
    await waitUntil('the store_connected log line', () => replica.events('store_connected').length === 1, 2000);
    console.info(
      `started before Redis: ready ${readyAfterMs} ms after waiting began (${Date.now() - redisBack} ms after Redis was restarted)`,
    );
  });

  it('a wrong Redis password still stops start-up with a clear error (exit 1)', async () => {
    const redis = await startRedis(onTestFinished, { password: 'the-right-one' });
    const fake = await provider({ kind: 'apiax' });
    const config = replicaConfig(`url: "redis://:not-the-password@127.0.0.1:${redis.port}/0", keyPrefix: "pw:"`, [
      { fake, options: { seed: fake.issueRefreshToken() } },
    ]);
    const result = await runCli(['serve', '--config', config], { timeoutMs: 10_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot start: cannot connect to redis 127\.0\.0\.1:\d+\/0: .*(WRONGPASS|invalid password)/);
    expect(result.stderr + result.stdout).not.toContain('not-the-password');
  });
});
