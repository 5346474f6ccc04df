/**
 * The refresh lock's holder failing, with proxy replicas as real processes over a real redis-server: the
 * holder SIGKILLed while its token request is in flight, and a holder frozen (SIGSTOP) past its lease and
 * its in-flight mark, once mid token request and once with its commit on the wire (delivered late). The
 * lease is 2 s and the mark blocks for 8 s here, so each test waits the mark out once; meanwhile the
 * others answer a clear 503 REFRESH_PENDING with Retry-After, never a stale rejection.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startHoldingGate } from '../helpers/holding-gate.js';
import { startProxyProcess, startReplicas, waitUntil, type ProxyProcess } from '../helpers/proxy-process.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';
import { recordKey, replicaConfig, standaloneStore, storedGeneration } from './replica-fixtures.js';
import { provider } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

const TOKEN_TIMEOUT_MS = 3_000;
/** How long the holder's in-flight mark keeps the others from sending its refresh token. */
const MARK_TTL_MS = 8_000;
const AUTH = `tokenRequestTimeoutMs: ${TOKEN_TIMEOUT_MS}\nlockLeaseMs: 2000\ninFlightMarkTtlMs: ${MARK_TTL_MS}`;

/**
 * Asks until the proxy serves the request (or gives its verdict): every answer before that must be a clear
 * 503 REFRESH_PENDING with Retry-After. Resolves to the final status and when it came.
 */
async function askUntilServed(url: string): Promise<{ status: number; at: number; body: string; pending: number }> {
  const deadline = Date.now() + 40_000;
  let pending = 0;
  for (;;) {
    const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
    const body = await response.text();
    if (response.status !== 503 || !body.includes('REFRESH_PENDING')) return { status: response.status, at: Date.now(), body, pending };
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    pending += 1;
    if (Date.now() > deadline) throw new Error(`${url} still pending after 40 s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe('the lock holder dies or stalls', () => {
  it('holder SIGKILLed with its token request in flight: the others answer 503 until its mark expires, then recover, or report the spent token dead', async () => {
    const redis = await startRedis(onTestFinished);
    // v3: the provider answers after a delay, and spends the refresh token even though the client has died.
    const v3 = await provider({ kind: 'v3' });
    // apiax: the request is held on the way, so the provider never sees it and the refresh token stays unspent.
    const apiax = await provider({ kind: 'apiax' });
    const gate = await startHoldingGate(apiax.origin, onTestFinished);
    const auth = AUTH;
    const config = replicaConfig(standaloneStore(redis, 'holder:'), [
      { fake: v3, options: { seed: v3.issueRefreshToken(), auth } },
      { fake: apiax, options: { seed: apiax.issueRefreshToken(), auth, tokenUrl: apiax.tokenUrl.replace(apiax.origin, gate.origin) } },
    ]);
    const [holder, ...others] = await startReplicas(config, 3);
    for (const replica of [holder!, ...others]) {
      expect((await fetch(`${replica.url}/v3/warm`)).status).toBe(200);
      expect((await fetch(`${replica.url}/apiax/warm`)).status).toBe(200);
    }
    const warmGeneration = await storedGeneration(redis, 'holder:', 'apiax');

    v3.setTokenDelay(2_000);
    gate.hold();
    v3.expireAccessTokens();
    apiax.expireAccessTokens();
    // The holder meets the rejections first: it takes both locks, marks both refresh tokens in flight and sends them.
    void fetch(`${holder!.url}/v3/holder`).catch(() => undefined);
    void fetch(`${holder!.url}/apiax/holder`).catch(() => undefined);
    await waitUntil('both token requests in flight', () => v3.counters.tokenCalls === 2 && gate.held() === 1, 5_000);
    const lockedAt = Date.now();
    await holder!.kill();
    v3.setTokenDelay(0);
    gate.pass();

    const results = await Promise.all(
      others.flatMap((replica) =>
        ['v3', 'apiax'].flatMap((upstream) =>
          [1, 2, 3].map(async (i) => ({ upstream, ...(await askUntilServed(`${replica.url}/${upstream}/after/${i}`)) })),
        ),
      ),
    );

    // apiax: the refresh token was never spent; the next holder uses it once the dead holder's mark has expired.
    const apiaxResults = results.filter((result) => result.upstream === 'apiax');
    expect(apiaxResults.map((result) => result.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(apiaxResults.some((result) => result.pending > 0)).toBe(true);
    const recoveredAfterMs = Math.max(...apiaxResults.map((result) => result.at)) - lockedAt;
    console.log(
      `holder SIGKILLed with its token request in flight: the others recovered ${recoveredAfterMs} ms after it took the lock (mark ${MARK_TTL_MS} ms)`,
    );
    expect(recoveredAfterMs).toBeLessThan(MARK_TTL_MS + 4_000);
    expect(apiax.counters.tokenCalls).toBe(2);
    expect(apiax.counters.reuseAttempts).toBe(0);
    expect(await storedGeneration(redis, 'holder:', 'apiax')).toBe(warmGeneration + 1);
    for (const replica of others) expect((await replica.status('apiax')).generation).toBe(warmGeneration + 1);
    // The next holder saw the dead holder's mark before sending the token (logs reach stdout within 250 ms).
    const warnings = () =>
      others.flatMap((replica) => replica.events('refresh_in_flight_found').filter((line) => line.upstream === 'apiax'));
    await waitUntil('the warning about the unfinished refresh', () => warnings().length > 0, 2_000);
    expect(warnings()).toHaveLength(1);

    // v3: the provider took the refresh token from the dead holder: one attempt with it, then a clear verdict
    // on every replica, and never a second attempt.
    expect(results.filter((result) => result.upstream === 'v3' && result.status === 200)).toEqual([]);
    for (const replica of others) {
      const { status, body } = await replica.readyz();
      expect(status).toBe(503);
      expect(body.notReady?.v3?.state).toBe('credential_dead');
      expect(body.notReady?.v3?.reason).toMatch(
        /refresh token was rejected.*an earlier refresh with this refresh token .* did not finish and probably spent it/,
      );
      expect(body.notReady?.apiax).toBeUndefined();
      const response = await fetch(`${replica.url}/v3/dead`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_DEAD');
    }
    expect(v3.counters.reuseAttempts).toBe(1);
    expect(v3.counters.tokenCalls).toBe(3); // warm-up, the dead holder's, and the one attempt that found it spent
  });

  it('holder frozen (SIGSTOP) past its lease and mark, then resumed: it cannot overwrite the newer record and adopts it', async () => {
    const redis = await startRedis(onTestFinished);
    // Apiax with the password grant: after the frozen holder's refresh token was spent (the provider answered
    // it, the holder never read the answer), the next holder can still get a new session.
    const fake = await provider({ kind: 'apiax' });
    const config = replicaConfig(standaloneStore(redis, 'frozen:'), [
      { fake, options: { seed: fake.issueRefreshToken(), auth: `${AUTH}\nusername: user\npassword: pass` } },
    ]);
    const [holder, other] = (await startReplicas(config, 2)) as [ProxyProcess, ProxyProcess];
    for (const replica of [holder, other]) expect((await fetch(`${replica.url}/apiax/warm`)).status).toBe(200);
    const warmGeneration = await storedGeneration(redis, 'frozen:', 'apiax');
    const generations = sampleGenerations(redis, 'frozen:', 'apiax');

    fake.setTokenDelay(2_000);
    fake.expireAccessTokens();
    void fetch(`${holder.url}/apiax/holder`).catch(() => undefined);
    await waitUntil('the holder to send its refresh token', () => fake.counters.tokenCalls === 2, 5_000);
    holder.pause();
    const pausedAt = Date.now();
    fake.setTokenDelay(0);

    const waited = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const result = await askUntilServed(`${other.url}/apiax/other/${i}`);
        return { status: result.status, afterMs: result.at - pausedAt };
      }),
    );
    expect(waited.map((result) => result.status)).toEqual([200, 200, 200]);
    // Nobody refreshed while the frozen holder's mark was valid.
    expect(Math.min(...waited.map((result) => result.afterMs))).toBeGreaterThan(MARK_TTL_MS - 2_000);
    const newer = await storedGeneration(redis, 'frozen:', 'apiax');
    expect(newer).toBe(warmGeneration + 1);

    const resumedAt = Date.now(); // taken first: the holder may conclude its refresh before this process runs on
    holder.resume();
    await waitUntil(
      'the resumed holder to adopt the newer record',
      async () => (await holder.status('apiax')).generation === newer,
      10_000,
    );
    for (let i = 0; i < 3; i++) expect((await fetch(`${holder.url}/apiax/resumed/${i}`)).status).toBe(200);
    // Its own refresh (frozen mid-request) ends as a timeout. Give a retry after that failure (backoff at
    // most 1 s) time to happen: there must be none, the holder has a fresh token now.
    await waitUntil(
      'the holder to conclude its own refresh',
      async () => Date.parse((await holder.status('apiax')).lastRefresh?.at ?? '') >= resumedAt,
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    // The stored generation only ever went up, by one: the holder wrote nothing after it woke up.
    expect(await generations.stop()).toEqual([warmGeneration, newer]);
    const [holderStatus, otherStatus] = await Promise.all([holder.status('apiax'), other.status('apiax')]);
    expect(holderStatus.generation).toBe(newer);
    expect(holderStatus.accessTokenFingerprint).toBe(otherStatus.accessTokenFingerprint);
    // The provider saw the refresh token the frozen holder spent once more: from the replica that found its
    // mark (and then fell back to the password grant); after the holder woke up, nothing else.
    expect(fake.counters.reuseAttempts).toBe(1);
    expect(fake.counters.tokenCalls).toBe(4); // warm-up, the frozen holder's, the spent token, the password grant
  });

  it('holder frozen past its mark with its commit on the wire: the late commit is refused, the holder adopts the newer record', async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'apiax' });
    const upstream = { fake, options: { seed: fake.issueRefreshToken(), auth: `${AUTH}\nusername: user\npassword: pass` } };
    // The holder reaches Redis through a forwarder that can delay what it sends; the other replica directly.
    const forwarder = await startTcpForwarder(redis, onTestFinished);
    const holder = await startProxyProcess(
      replicaConfig(`url: "redis://127.0.0.1:${forwarder.port}/0", keyPrefix: "late:"`, [upstream]),
      'holder',
    );
    const other = await startProxyProcess(replicaConfig(standaloneStore(redis, 'late:'), [upstream]), 'other');
    for (const replica of [holder, other]) expect((await fetch(`${replica.url}/apiax/warm`)).status).toBe(200);
    const warmGeneration = await storedGeneration(redis, 'late:', 'apiax');
    const generations = sampleGenerations(redis, 'late:', 'apiax');

    fake.setTokenDelay(2_000);
    fake.expireAccessTokens();
    void fetch(`${holder.url}/apiax/holder`).catch(() => undefined);
    await waitUntil('the holder to send its refresh token', () => fake.counters.tokenCalls === 2, 5_000);
    // The answer comes in 2 s. The holder's next compare-and-set (the only command naming the change channel)
    // is the commit of the new record: hold it on the wire, and freeze the holder 100 ms later, idle, well
    // before its 500 ms command timeout can fire.
    let commitSentAt = 0;
    forwarder.hold((held) => {
      if (commitSentAt === 0 && held.includes('{late:apiax}:changed')) commitSentAt = Date.now();
    });
    await waitUntil('the holder to send its commit', () => commitSentAt > 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, commitSentAt + 100 - Date.now())));
    holder.pause();
    fake.setTokenDelay(0);

    // The other replica waits the frozen holder's lease and mark out, then gets a new session.
    const waited = await Promise.all([1, 2, 3].map(async (i) => (await askUntilServed(`${other.url}/apiax/other/${i}`)).status));
    expect(waited).toEqual([200, 200, 200]);
    const newer = await storedGeneration(redis, 'late:', 'apiax');
    expect(newer).toBe(warmGeneration + 1);
    const writer = async () => redis.cli('HGET', recordKey('late:', 'apiax'), 'writer');
    expect(await writer()).toMatch(new RegExp(`^${other.pid}-`));

    // The network delivers the holder's commit now (it still expects the old generation), then the holder wakes.
    await Promise.race([
      forwarder.release(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('Redis did not answer the late commit')), 2_000)),
    ]);
    expect(await writer()).toMatch(new RegExp(`^${other.pid}-`)); // the late commit did not land
    holder.resume();
    await waitUntil(
      'the holder to adopt the stored record',
      async () => (await holder.status('apiax')).accessTokenFingerprint === (await other.status('apiax')).accessTokenFingerprint,
      10_000,
    );
    for (let i = 0; i < 3; i++) expect((await fetch(`${holder.url}/apiax/resumed/${i}`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // room for a needless retry, which must not come

    expect(await generations.stop()).toEqual([warmGeneration, newer]);
    expect(await writer()).toMatch(new RegExp(`^${other.pid}-`));
    expect(fake.counters.reuseAttempts).toBe(1); // the other replica's one attempt with the token the holder had spent
    expect(fake.counters.tokenCalls).toBe(4); // warm-up, the holder's, the spent token, the password grant
  });
});

/** Reads the stored generation every 100 ms until stopped; resolves to the distinct values in the order seen. */
function sampleGenerations(redis: RedisProcess, keyPrefix: string, upstream: string): { stop(): Promise<number[]> } {
  let running = true;
  const seen: number[] = [];
  const loop = (async () => {
    while (running) {
      const generation = await storedGeneration(redis, keyPrefix, upstream).catch(() => undefined);
      if (generation !== undefined && seen.at(-1) !== generation) seen.push(generation);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}
