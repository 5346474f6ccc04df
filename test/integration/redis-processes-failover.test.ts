/**
 * Issue 3, Redis Sentinel: proxy replicas as real processes over 1 master, 1 replica and 3 sentinels,
 * the master SIGKILLed under traffic. Requests keep flowing on the in-memory token; the refresh after the
 * failover makes exactly one token call and its record is on the new master. Then the measurement the
 * README quotes: failovers with a refresh in flight at the moment the master dies, and how many of them
 * led to a second token call (asynchronous replication can lose the lock; the compare-and-set on the
 * generation still keeps the record consistent, which is what is asserted). FAILOVER_TRIALS=n runs more.
 */
import { beforeAll, expect, it, onTestFinished } from 'vitest';
import { startReplicas, startTraffic, waitUntil, type ProxyProcess } from '../helpers/proxy-process.js';
import { startSentinelSetup, type RedisProcess, type SentinelSetup } from '../helpers/redis-server.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { replicaConfig, storedGeneration } from './replica-fixtures.js';
import { provider } from './token-fixtures.js';

const PREFIX = 'failover:';
const TRIALS = Number(process.env.FAILOVER_TRIALS ?? 1);

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

/** Kills the current master and waits until the sentinels have promoted `next` and both proxies use it. */
async function failOver(setup: SentinelSetup, dying: RedisProcess, next: RedisProcess, proxies: readonly ProxyProcess[]): Promise<number> {
  const killedAt = Date.now();
  await dying.kill();
  await waitUntil('the sentinels to promote the replica', async () => (await setup.currentMaster()).port === next.port && (await next.cli('ROLE')).startsWith('master'), 20_000);
  for (const proxy of proxies) {
    await waitUntil(`${proxy.name} to reconnect to the new master`, () => proxy.events('redis_reconnected').some((line) => line.connection === 'commands' && Date.parse(String(line.time)) >= killedAt), 15_000);
  }
  return Date.now() - killedAt;
}

/**
 * Restarts a killed data node as a replica of the current master (what the sentinels would do by themselves
 * some 10 s later), and waits until it is in sync and every sentinel counts it as a healthy replica again.
 */
async function rejoinAsReplica(setup: SentinelSetup, node: RedisProcess, master: RedisProcess): Promise<void> {
  await node.restart();
  await node.cli('REPLICAOF', master.host, String(master.port));
  // A sentinel with a stale view can turn the restarted node back into a master (it was one when it died):
  // say REPLICAOF again whenever it reports role:master, and show its replication state if it never syncs.
  let lastInfo = '';
  let lastReplicaOf = Date.now();
  try {
    await waitUntil(
      'the old master to rejoin as a replica in sync',
      async () => {
        lastInfo = await node.cli('INFO', 'replication');
        if (lastInfo.includes('role:master') && Date.now() - lastReplicaOf > 3_000) {
          lastReplicaOf = Date.now();
          await node.cli('REPLICAOF', master.host, String(master.port));
        }
        return lastInfo.includes('master_link_status:up');
      },
      45_000,
    );
  } catch (error) {
    const masterInfo = await master.cli('INFO', 'replication').catch(() => '(no answer)');
    throw new Error(`${(error as Error).message}\n--- rejoining node ---\n${lastInfo}\n--- master ---\n${masterInfo}`);
  }
  await waitUntil(
    'the sentinels to count it as a healthy replica',
    async () => {
      for (const sentinel of setup.sentinels) {
        const replicas = await sentinel.cli('SENTINEL', 'REPLICAS', setup.name);
        const lines = replicas.split('\n');
        const port = lines.indexOf('port');
        const flags = lines.indexOf('flags');
        if (lines[port + 1] !== String(node.port) || lines[flags + 1] !== 'slave') return false;
      }
      return true;
    },
    // Sentinels learn of replicas from the master's INFO, polled every 10 s: on a loaded box this can take two rounds.
    40_000,
  );
}

async function statuses(proxies: readonly ProxyProcess[], path: string): Promise<(number | string)[]> {
  return Promise.all(
    proxies.map((proxy) =>
      fetch(`${proxy.url}/v3/${path}`, { signal: AbortSignal.timeout(20_000) }).then(
        (response) => response.status,
        (error: unknown) => String(error),
      ),
    ),
  );
}

it('Sentinel failover under traffic, then a refresh: zero failed requests, one token call, the record on the new master', async () => {
  const setup = await startSentinelSetup(onTestFinished);
  const fake = await provider({ kind: 'v3', tokenDelayMs: 200 });
  const sentinels = setup.sentinelAddresses.map(({ host, port }) => `{ host: "${host}", port: ${port} }`).join(', ');
  const config = replicaConfig(`sentinels: [${sentinels}], name: ${setup.name}, keyPrefix: "${PREFIX}"`, [{ fake, options: { seed: fake.issueRefreshToken() } }]);
  const proxies = await startReplicas(config, 2);
  expect(await statuses(proxies, 'warm')).toEqual([200, 200]);
  const warmGeneration = await storedGeneration(setup.master, PREFIX, 'v3');
  expect(warmGeneration).toBe(2);

  const traffic = startTraffic(proxies.map((proxy) => `${proxy.url}/v3`), 20);
  await waitUntil('traffic to flow', () => traffic.done() >= 200, 10_000);
  const failoverMs = await failOver(setup, setup.master, setup.replica, proxies);
  const afterFailover = traffic.done();
  await waitUntil('requests after the failover', () => traffic.done() >= afterFailover + 200, 10_000);
  const result = await traffic.stop();
  console.log(`sentinel failover (master SIGKILLed) under 20 request loops: proxies on the new master after ${failoverMs} ms; ${result.ok} ok, ${result.failures.length} failed, slowest ${result.maxLatencyMs} ms`);
  expect(result.failures).toEqual([]);
  expect(await storedGeneration(setup.replica, PREFIX, 'v3')).toBe(warmGeneration); // replicated before the kill

  fake.expireAccessTokens();
  expect(await statuses([...proxies, ...proxies], 'after-failover')).toEqual([200, 200, 200, 200]);
  expect(fake.counters.tokenCalls).toBe(2);
  expect(fake.counters.reuseAttempts).toBe(0);
  expect(await storedGeneration(setup.replica, PREFIX, 'v3')).toBe(warmGeneration + 1);
  for (const proxy of proxies) expect((await proxy.status('v3')).generation).toBe(warmGeneration + 1);

  // The measurement: the master dies while a refresh is in flight (lock and mark written, token request
  // sent). The holder keeps its new token in memory and writes it to whichever master comes next.
  let nodes: [RedisProcess, RedisProcess] = [setup.replica, setup.master];
  let doubles = 0;
  for (let trial = 1; trial <= TRIALS; trial++) {
    const [current, standby] = nodes;
    await rejoinAsReplica(setup, standby, current);
    const generationBefore = await storedGeneration(current, PREFIX, 'v3');
    const callsBefore = fake.counters.tokenCalls;
    fake.setTokenDelay(1_500);
    fake.expireAccessTokens();
    const first = fetch(`${proxies[0]!.url}/v3/in-flight`, { signal: AbortSignal.timeout(30_000) }).then((response) => response.status, String);
    await waitUntil('the refresh to be in flight', () => fake.counters.tokenCalls > callsBefore, 5_000);
    await failOver(setup, current, standby, proxies);
    fake.setTokenDelay(0);
    expect(await first).toBe(200); // the holder serves its new token from memory while the write waits for a master

    // Every proxy ends up on one record, on the new master, one generation up; requests succeed everywhere.
    await waitUntil('the new record on the new master', async () => (await storedGeneration(standby, PREFIX, 'v3')) === generationBefore + 1, 15_000);
    await waitUntil('both proxies on the new record', async () => (await Promise.all(proxies.map(async (proxy) => (await proxy.status('v3')).generation))).every((generation) => generation === generationBefore + 1), 15_000);
    expect(await statuses([...proxies, ...proxies], `trial-${trial}`)).toEqual([200, 200, 200, 200]);
    const calls = fake.counters.tokenCalls - callsBefore;
    console.log(`failover trial ${trial}: ${calls} token call(s) for one refresh in flight while the master died`);
    expect(calls === 1 || calls === 2).toBe(true);
    if (calls === 2) doubles++;
    else expect(fake.counters.reuseAttempts).toBe(0);
    nodes = [standby, current];
  }
  console.log(`failovers with a refresh in flight: ${doubles} of ${TRIALS} led to a second token call`);
}, 180_000);
