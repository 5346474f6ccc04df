/**
 * Issue 9, "a valid refresh token is never lost or spent twice, and the proxy answers clearly whatever
 * Redis or another replica does", with proxy replicas as real processes over a real redis-server:
 *   1. the commit stall: the replica that refreshed is cut off from Redis (its link stalls) right after
 *      the provider took its refresh token, for much longer than the lock lease;
 *   2. the lock holder SIGKILLed mid-refresh, once after the provider spent its refresh token and once
 *      before the provider looked at it;
 *   3. a path the upstream always refuses with 403 (Collaborate), hit on several replicas in turn.
 * Short leases and marks (lockLeaseMs 1500, inFlightMarkTtlMs 4000 or 30000) keep each test well under a
 * minute. The token endpoint's own failures are in token-endpoint-outage.test.ts.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startFaultRelay } from '../helpers/fault-relay.js';
import { startProxyProcess, startReplicas, waitUntil, type ProxyProcess } from '../helpers/proxy-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { ask, isClear503, sleep, summarize, tally, type Answer } from './fault-fixtures.js';
import { replicaConfig, standaloneStore, storedGeneration } from './replica-fixtures.js';
import { provider, tokenForms } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

const LEASE_MS = 1_500;
const WAIT_MS = 2_000;
/** A request is answered within tokenWaitTimeoutMs; this margin covers a loaded 2-core machine. */
const ANSWER_BOUND_MS = WAIT_MS + 3_000;
/** Fails fast on a stalled link (a store operation within 2 x this). */
const COMMAND_TIMEOUT_MS = 300;

/** `auth:` lines: short lease and waits; tokenRequestTimeoutMs short too, so the old 2 x it + 5 s lock TTL is 9 s. */
function authLines(inFlightMarkTtlMs: number): string {
  return [
    `lockLeaseMs: ${LEASE_MS}`,
    `inFlightMarkTtlMs: ${inFlightMarkTtlMs}`,
    `tokenWaitTimeoutMs: ${WAIT_MS}`,
    'tokenRequestTimeoutMs: 2000',
  ].join('\n');
}

/** The refresh token the provider minted last: the one the store holds after the latest refresh. */
function newestRefreshToken(issued: readonly string[]): string {
  const token = issued.filter((t) => t.includes('-rt-')).at(-1);
  if (token === undefined) throw new Error('no refresh token issued yet');
  return token;
}

async function warm(replicas: readonly ProxyProcess[], upstream: string): Promise<void> {
  for (const replica of replicas) expect(summarize(await ask(`${replica.url}/${upstream}/warm`, 10_000))).toBe('200');
}

describe('the commit stall: the replica that refreshed loses its link to Redis right after the provider took its refresh token', () => {
  it('the other replica never spends the refresh token again; it answers 503 REFRESH_PENDING until the link is back, then adopts the same pair', async () => {
    const redis = await startRedis(onTestFinished);
    // Apiax: one-time refresh tokens, and presenting a spent one kills the whole session (Keycloak).
    const fake = await provider({ kind: 'apiax' });
    const seed = fake.issueRefreshToken();
    // The mark outlives the stall: a stall shorter than inFlightMarkTtlMs must never lead to a second use.
    const upstream = { fake, options: { seed, auth: authLines(30_000) } };
    const relay = await startFaultRelay(redis, onTestFinished);
    const a = await startProxyProcess(
      replicaConfig(`url: "${relay.url}/0", keyPrefix: "stall:", commandTimeoutMs: ${COMMAND_TIMEOUT_MS}`, [upstream]),
      'A',
    );
    const b = await startProxyProcess(
      replicaConfig(standaloneStore(redis, 'stall:', `commandTimeoutMs: ${COMMAND_TIMEOUT_MS}`), [upstream]),
      'B',
    );
    await warm([a, b], 'apiax');
    expect(fake.counters.tokenCalls).toBe(1);
    const warmGeneration = await storedGeneration(redis, 'stall:', 'apiax');
    const spentByA = newestRefreshToken(fake.issuedTokens);

    // A meets the rejection first and refreshes. The moment its token request is in, its link to Redis
    // stalls; then the provider answers: A holds the only copy of the new pair, and cannot store it.
    const gate = fake.holdTokenRequests();
    fake.expireAccessTokens();
    const aFirst = ask(`${a.url}/apiax/a-first`, 20_000);
    await gate.waitForArrivals(1, 5_000);
    relay.stall();
    const stalledAt = Date.now();
    gate.release();
    expect(summarize(await aFirst)).toBe('200'); // A serves the new pair from memory
    await waitUntil('A to report the failed write', () => a.events('store_write_failed').length > 0, 5_000);

    // 12 s cut off: eight lock leases. B's token is rejected by the upstream all along.
    const STALL_MS = 12_000;
    const duringStall: { a: Answer; b: Answer }[] = [];
    while (Date.now() - stalledAt < STALL_MS) {
      const [fromA, fromB] = await Promise.all([
        ask(`${a.url}/apiax/a/${duringStall.length}`, ANSWER_BOUND_MS),
        ask(`${b.url}/apiax/b/${duringStall.length}`, ANSWER_BOUND_MS),
      ]);
      duringStall.push({ a: fromA, b: fromB });
      await sleep(500);
    }
    console.log(
      `commit stall, ${STALL_MS / 1000} s: A answered ${tally(duringStall.map(({ a: fromA }) => fromA))}; B answered ${tally(duringStall.map(({ b: fromB }) => fromB))}; reuse attempts ${fake.counters.reuseAttempts}`,
    );
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
    expect(fake.timesPresented(spentByA)).toBe(1);
    expect(duringStall.map(({ a: fromA }) => summarize(fromA)).filter((s) => s !== '200')).toEqual([]);
    // B: a clear 503 (another replica's refresh is pending), never the upstream's stale 401.
    expect(
      duringStall
        .map(({ b: fromB }) => fromB)
        .filter((answer) => answer.status !== 200 && !isClear503(answer, ['REFRESH_PENDING']))
        .map(summarize),
    ).toEqual([]);
    expect(relay.heldBytes().toServer).toBeGreaterThan(0); // the link really was stalled all along

    // The link comes back: A's pair is stored, B adopts it.
    relay.pass();
    const next = warmGeneration + 1;
    await waitUntil('B to adopt the pair A stored', async () => (await b.status('apiax')).generation === next, 15_000);
    for (let i = 0; i < 3; i++) expect(summarize(await ask(`${b.url}/apiax/after/${i}`, ANSWER_BOUND_MS))).toBe('200');
    expect(await storedGeneration(redis, 'stall:', 'apiax')).toBe(next);
    const [statusA, statusB] = await Promise.all([a.status('apiax'), b.status('apiax')]);
    expect(statusA.generation).toBe(next);
    expect(statusB.accessTokenFingerprint).toBe(statusA.accessTokenFingerprint);
    expect(statusB.refreshTokenFingerprint).toBe(statusA.refreshTokenFingerprint);

    // Never dead, never re-seeded, one refresh in all after the warm-up.
    for (const replica of [a, b]) {
      expect(replica.events('credential_dead')).toEqual([]);
      expect((await replica.readyz()).status).toBe(200);
    }
    expect(fake.timesPresented(seed)).toBe(1);
    expect(fake.counters.refreshGrants).toBe(2);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
  }, 60_000);
});

describe('the lock holder is SIGKILLed mid-refresh', () => {
  const MARK_TTL_MS = 4_000;
  /** Survivors answer either with the upstream's 200 or with a clear 503. */
  const CLEAR_CODES = ['REFRESH_PENDING', 'TOKEN_ENDPOINT_UNAVAILABLE'];
  const clear = (answer: Answer) =>
    answer.status === 200 || isClear503(answer, CLEAR_CODES) || (answer.status === 503 && answer.code === 'CREDENTIAL_DEAD');

  async function holderKilledMidRefresh(kind: 'v3' | 'apiax', keyPrefix: string) {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind });
    const seed = fake.issueRefreshToken();
    const config = replicaConfig(standaloneStore(redis, keyPrefix, `commandTimeoutMs: ${COMMAND_TIMEOUT_MS}`), [
      { fake, options: { seed, auth: authLines(MARK_TTL_MS) } },
    ]);
    const [holder, ...survivors] = (await startReplicas(config, 3)) as [ProxyProcess, ProxyProcess, ProxyProcess];
    await warm([holder, ...survivors], kind);
    expect(fake.counters.tokenCalls).toBe(1);
    const warmGeneration = await storedGeneration(redis, keyPrefix, kind);
    const heldToken = newestRefreshToken(fake.issuedTokens);

    const gate = fake.holdTokenRequests();
    fake.expireAccessTokens();
    void ask(`${holder.url}/${kind}/holder`, 20_000);
    await gate.waitForArrivals(1, 5_000);
    await holder.kill();
    return { redis, fake, seed, gate, survivors, warmGeneration, heldToken };
  }

  /** Requests to the survivors in turn, every 300 ms, until `done` or `limitMs`; every answer recorded. */
  async function askSurvivors(
    survivors: readonly ProxyProcess[],
    kind: string,
    done: (answers: Answer[]) => Promise<boolean>,
    limitMs: number,
  ): Promise<Answer[]> {
    const answers: Answer[] = [];
    const started = Date.now();
    while (!(await done(answers))) {
      if (Date.now() - started > limitMs)
        throw new Error(`not settled after ${limitMs} ms; answers so far: ${answers.map(summarize).join(', ')}`);
      answers.push(await ask(`${survivors[answers.length % survivors.length]!.url}/${kind}/after/${answers.length}`, 10_000));
      await sleep(300);
    }
    return answers;
  }

  it('after the provider spent its refresh token: survivors answer clearly, then send it once, and report it dead naming the unfinished refresh', async () => {
    const { fake, gate, survivors, heldToken } = await holderKilledMidRefresh('v3', 'spent:');
    gate.release(); // the provider takes the dead holder's refresh token and answers into a closed socket
    await waitUntil("the provider to spend the holder's refresh token", () => fake.timesPresented(heldToken) === 1, 5_000);

    const answers = await askSurvivors(
      survivors,
      'v3',
      async () =>
        (await Promise.all(survivors.map(async (s) => (await s.readyz()).body.notReady?.v3?.state === 'credential_dead'))).every(Boolean),
      MARK_TTL_MS + 20_000,
    );
    console.log(
      `holder killed after the provider spent its token: survivors answered ${tally(answers)}; reuse attempts ${fake.counters.reuseAttempts}`,
    );
    expect(answers.filter((answer) => !clear(answer)).map(summarize)).toEqual([]);
    // While the dead holder's mark was live, the survivors said so instead of sending its refresh token.
    expect(answers.some((answer) => answer.code === 'REFRESH_PENDING')).toBe(true);
    // Once the mark was old enough: one attempt in all with the probably spent token, never a second.
    expect(fake.counters.reuseAttempts).toBe(1);
    expect(fake.timesPresented(heldToken)).toBe(2);
    expect(fake.counters.tokenCalls).toBe(3); // warm-up, the dead holder's, the one probe
    for (const survivor of survivors) {
      const { status, body } = await survivor.readyz();
      expect(status).toBe(503);
      expect(body.notReady?.v3?.reason).toMatch(/did not finish|unfinished/i);
      expect(summarize(await ask(`${survivor.url}/v3/dead`, ANSWER_BOUND_MS))).toMatch(/^503 CREDENTIAL_DEAD/);
    }
    expect(fake.counters.reuseAttempts).toBe(1);
  }, 60_000);

  it('before the provider looked at its refresh token: survivors answer clearly, then one of them refreshes with it once the mark has expired', async () => {
    const { redis, fake, seed, gate, survivors, warmGeneration, heldToken } = await holderKilledMidRefresh('apiax', 'unspent:');
    gate.discard(); // the request is lost on the way: the refresh token is still good

    const answers = await askSurvivors(
      survivors,
      'apiax',
      async (so) => so.at(-1)?.status === 200 && so.at(-2)?.status === 200,
      MARK_TTL_MS + 20_000,
    );
    console.log(`holder killed before the provider looked at its token: survivors answered ${tally(answers)}`);
    expect(answers.filter((answer) => !clear(answer)).map(summarize)).toEqual([]);
    expect(answers.some((answer) => answer.code === 'REFRESH_PENDING')).toBe(true);
    for (const survivor of survivors) expect(summarize(await ask(`${survivor.url}/apiax/later`, ANSWER_BOUND_MS))).toBe('200');

    const next = warmGeneration + 1;
    expect(await storedGeneration(redis, 'unspent:', 'apiax')).toBe(next);
    for (const survivor of survivors) {
      expect((await survivor.status('apiax')).generation).toBe(next);
      expect(survivor.events('credential_dead')).toEqual([]);
    }
    expect(fake.timesPresented(heldToken)).toBe(1); // the survivor's refresh; the holder's never got processed
    expect(fake.timesPresented(seed)).toBe(1); // no re-seed
    expect(tokenForms(fake).filter((form) => form.get('refresh_token') === seed)).toHaveLength(1);
    expect(fake.counters.refreshGrants).toBe(2);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
  }, 60_000);
});

describe('a path the upstream always refuses (Collaborate 403), on several replicas', () => {
  it("20 requests alternating over 3 replicas cost at most one refresh, and each gets the upstream's 403", async () => {
    const redis = await startRedis(onTestFinished);
    const fake = await provider({ kind: 'collaborate' });
    // The resource API forbids /forbidden/* whatever the token; other paths answer normally.
    fake.setApiHandler((req, res) => {
      const forbidden = req.url.includes('/forbidden/');
      const body = forbidden ? 'Access denied' : JSON.stringify({ ok: true });
      res.writeHead(forbidden ? 403 : 200, {
        'content-type': forbidden ? 'text/plain; charset=utf-8' : 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      res.end(body);
    });
    const config = replicaConfig(standaloneStore(redis, 'forbidden:'), [
      { fake, options: { seed: fake.issueRefreshToken(), auth: authLines(4_000) } },
    ]);
    const replicas = await startReplicas(config, 3);
    await warm(replicas, 'collaborate');
    expect(fake.counters.tokenCalls).toBe(1);

    const answers: string[] = [];
    for (let i = 0; i < 20; i++)
      answers.push(summarize(await ask(`${replicas[i % replicas.length]!.url}/collaborate/forbidden/${i}`, ANSWER_BOUND_MS)));
    expect(answers).toEqual(Array.from({ length: 20 }, () => '403'));
    const refreshes = fake.counters.tokenCalls - 1;
    console.log(`always-403 path, 20 requests over 3 replicas: ${refreshes} refresh(es)`);
    expect(refreshes).toBeLessThanOrEqual(1);

    // The credential is fine for everything else.
    for (const replica of replicas) expect(summarize(await ask(`${replica.url}/collaborate/allowed`, ANSWER_BOUND_MS))).toBe('200');
    expect(fake.counters.reuseAttempts).toBe(0);
    expect(fake.counters.invalidGrants).toBe(0);
  }, 60_000);
});
