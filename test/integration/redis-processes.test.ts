/**
 * Issue 3 with proxy replicas as real processes (`oauth-sidecar serve`) over a real redis-server: the
 * refresh storm of many replicas meeting an expired token, records encrypted at rest end to end, and Redis
 * killed and restarted under traffic. The lock holder killed or frozen is in redis-processes-faults.test.ts,
 * Sentinel failover in redis-processes-failover.test.ts. In-process replicas: redis-replicas.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startProxyProcess, startReplicas, startTraffic, waitUntil } from '../helpers/proxy-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { ensureBuilt, runCli } from '../helpers/run-cli.js';
import { replicaConfig, standaloneStore, storedGeneration } from './replica-fixtures.js';
import { provider } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

describe('replica processes over one Redis', () => {
  it('4 replicas, the access token expired, 400 concurrent requests: all succeed with exactly 1 token call and no reuse', async () => {
    const redis = await startRedis(onTestFinished);
    // A slow token endpoint, so that the requests of every replica pile up behind the one refresh.
    const fake = await provider({ kind: 'v3', tokenDelayMs: 300 });
    const config = replicaConfig(standaloneStore(redis, 'storm:'), [{ fake, options: { seed: fake.issueRefreshToken() } }]);
    const replicas = await startReplicas(config, 4);
    for (const replica of replicas) expect((await fetch(`${replica.url}/v3/warm`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(1); // the seed was refreshed once, by whichever replica came first
    const warmGeneration = await storedGeneration(redis, 'storm:', 'v3');

    fake.expireAccessTokens();
    const started = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        fetch(`${replicas[i % replicas.length]!.url}/v3/storm/${i}`, { signal: AbortSignal.timeout(20_000) }).then(
          async (response) => {
            await response.arrayBuffer();
            return response.status;
          },
          (error: unknown) => String(error),
        ),
      ),
    );
    const elapsedMs = Math.round(performance.now() - started);

    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(fake.counters.tokenCalls).toBe(2);
    expect(fake.counters.refreshGrants).toBe(2);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
    // Every replica ends on the one stored generation.
    expect(await storedGeneration(redis, 'storm:', 'v3')).toBe(warmGeneration + 1);
    for (const replica of replicas) expect((await replica.status('v3')).generation).toBe(warmGeneration + 1);
    console.log(
      `refresh storm: 4 replica processes, 400 concurrent requests on an expired token: ${fake.counters.tokenCalls - 1} token call, all answered in ${elapsedMs} ms`,
    );
  });
});

describe('records encrypted at rest (encryptionKey)', () => {
  it('keeps every token out of Redis in clear text; a replica with a wrong or missing key, or a tampered record, refuses to start', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'apiax' });
    const seed = fake.issueRefreshToken();
    const key = randomBytes(32);
    const config = replicaConfig(standaloneStore(redis, 'enc:', 'encryptionKey: "${OAUTH_SIDECAR_ENCRYPTION_KEY}"'), [
      { fake, options: { seed } },
    ]);
    const env = { OAUTH_SIDECAR_ENCRYPTION_KEY: key.toString('hex') };
    const replicas = await startReplicas(config, 2, env);
    for (const replica of replicas) expect((await fetch(`${replica.url}/apiax/x`)).status).toBe(200);
    fake.expireAccessTokens(); // one more generation, so that a rotated refresh token is stored too
    for (const replica of replicas) expect((await fetch(`${replica.url}/apiax/y`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);

    const keys = (await redis.cli('--scan', '--pattern', '*')).split('\n').filter(Boolean);
    expect(keys.sort()).toEqual(['{enc:apiax}:record', '{enc:}:key-check']);
    const raw: string[] = [];
    for (const name of keys)
      raw.push((await redis.cli('TYPE', name)) === 'hash' ? await redis.cli('HGETALL', name) : await redis.cli('GET', name));
    const everything = raw.join('\n');
    const secrets = [seed, ...fake.issuedTokens];
    expect(secrets.length).toBeGreaterThanOrEqual(5); // seed, and two access and two refresh tokens
    for (const secret of secrets) expect(everything).not.toContain(secret);
    expect(await redis.cli('HGET', '{enc:apiax}:record', 'blob')).toMatch(/^v2\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);

    // A replica started with another key, or none, must not get as far as listening: it exits at start-up.
    const wrongKey = await runCli(['serve', '--config', config], {
      env: { OAUTH_SIDECAR_ENCRYPTION_KEY: randomBytes(32).toString('hex') },
      timeoutMs: 10_000,
    });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/cannot start: .*encryptionKey does not match/);
    expect(wrongKey.stdout).not.toContain('"event":"started"');
    const noKey = await runCli(['serve', '--config', replicaConfig(standaloneStore(redis, 'enc:'), [{ fake, options: { seed } }])], {
      timeoutMs: 10_000,
    });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/cannot start: .*encrypted .*no encryptionKey is set/);

    // One flipped bit in the stored ciphertext: a replica starting now must refuse the record, not use it.
    const [version, nonce, sealed] = (await redis.cli('HGET', '{enc:apiax}:record', 'blob')).split('.');
    const bytes = Buffer.from(sealed ?? '', 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    await redis.cli('HSET', '{enc:apiax}:record', 'blob', `${version}.${nonce}.${bytes.toString('base64')}`);
    const tampered = await runCli(['serve', '--config', config], { env, timeoutMs: 10_000 });
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/cannot start: .*cannot decrypt the token record for apiax/);
    for (const secret of secrets)
      expect(`${wrongKey.stdout}${wrongKey.stderr}${noKey.stdout}${noKey.stderr}${tampered.stdout}${tampered.stderr}`).not.toContain(
        secret,
      );
    expect(fake.counters.tokenCalls).toBe(2);
  });
});

describe('Redis down', () => {
  it('Redis killed and restarted under traffic with a valid token: zero failed requests; the lost record is written back at once', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'v3' });
    const config = replicaConfig(standaloneStore(redis, 'restart:'), [{ fake, options: { seed: fake.issueRefreshToken() } }]);
    const replicas = await startReplicas(config, 2);
    for (const replica of replicas) expect((await fetch(`${replica.url}/v3/warm`)).status).toBe(200);

    const traffic = startTraffic(
      replicas.map((replica) => `${replica.url}/v3`),
      20,
    );
    await waitUntil('traffic to flow', () => traffic.done() >= 200, 10_000);
    await redis.kill();
    const killedAt = traffic.done();
    await waitUntil('requests while Redis is down', () => traffic.done() >= killedAt + 200, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // Redis stays down for 1.5 s
    expect(traffic.failures()).toEqual([]);
    const restartStarted = Date.now();
    await redis.restart();
    // Each replica's command connection comes back by itself (capped reconnect backoff).
    for (const replica of replicas) {
      await waitUntil(
        `${replica.name} to reconnect`,
        () =>
          replica
            .events('redis_reconnected')
            .some((line) => line.connection === 'commands' && Date.parse(String(line.time)) >= restartStarted),
        10_000,
      );
    }
    const restartedAt = traffic.done();
    await waitUntil('requests after the restart', () => traffic.done() >= restartedAt + 200, 10_000);
    const result = await traffic.stop();

    console.log(
      `Redis kill -9 + restart under 20 request loops: ${result.ok} ok, ${result.failures.length} failed, slowest ${result.maxLatencyMs} ms`,
    );
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(600);
    expect(fake.counters.tokenCalls).toBe(1);
    for (const replica of replicas) expect((await replica.readyz()).status).toBe(200);

    // This Redis keeps nothing on disk, so the restart lost the record, and the seed in proxy.yaml is spent.
    // The rotated refresh token lives on only in the replicas' memory: the resync after the reconnect finds
    // the record gone and a replica writes it back at once, before any refresh needs it.
    const restoredAfterMs = await waitUntil(
      'the lost record to be written back',
      async () => (await storedGeneration(redis, 'restart:', 'v3')) === 2,
      5_000,
    );
    console.log(
      `record written back ${restoredAfterMs} ms after the traffic check, ${Date.now() - restartStarted} ms after the restart began`,
    );
    // So a replica starting now adopts it rather than storing the spent seed.
    const late = await startProxyProcess(config, 'late-replica');
    expect((await fetch(`${late.url}/v3/late`)).status).toBe(200);
    expect((await late.status('v3')).generation).toBe(2);
    expect(fake.counters.tokenCalls).toBe(1);

    fake.expireAccessTokens();
    const after = await Promise.all(
      [...replicas, late].flatMap((replica) => [1, 2, 3].map(async (i) => (await fetch(`${replica.url}/v3/after/${i}`)).status)),
    );
    expect(after).toEqual(Array.from({ length: 9 }, () => 200));
    expect(fake.counters.tokenCalls).toBe(2);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
    expect(await storedGeneration(redis, 'restart:', 'v3')).toBe(3);
    await waitUntil('the restore to be logged', () => replicas.some((replica) => replica.events('record_restored').length > 0), 2_000);
    // Both replicas may write back at once: they hold the same record, and the compare-and-set takes the
    // second, identical write as already applied. What matters is that it was generation 2, and only once each.
    const restores = replicas.flatMap((replica) => replica.events('record_restored'));
    expect(restores.length).toBeLessThanOrEqual(replicas.length);
    for (const replica of replicas) expect(replica.events('record_restored').length).toBeLessThanOrEqual(1);
    expect(restores.map((line) => line.generation)).toEqual(restores.map(() => 2));
  });
});
