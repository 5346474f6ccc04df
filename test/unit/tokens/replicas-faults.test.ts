/**
 * Races between replicas sharing one store, with fake time: a refresh token that is still valid is never
 * spent twice nor written off, whatever the store link, the token endpoint or another replica does.
 */
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../../src/errors.js';
import { invalidGrant, wafPage } from '../../helpers/scripted-token-client.js';
import { UPSTREAM, cluster, type Cluster, type Replica } from './replicas.js';

/** Both replicas on generation 2 (the seed's first token pair, fetched by the first replica). */
async function twoReplicasOnFirstToken(c: Cluster): Promise<[Replica, Replica]> {
  const a = await c.replica('a');
  const b = await c.replica('b');
  await c.clock.advance(0);
  expect(c.endpoint.requests).toHaveLength(1);
  c.endpoint.last.succeed();
  await c.clock.advanceUntil(() => b.manager.current()?.generation === 2, 5_000);
  expect(a.manager.current()?.generation).toBe(2);
  return [a, b];
}

const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.catch((error: unknown) => error);

describe('replicas sharing a store (fake clock)', () => {
  it('only one replica fetches the first token; the other waits for it and adopts it', async () => {
    const c = cluster();
    const [a, b] = await twoReplicasOnFirstToken(c);
    expect(c.endpoint.requests).toHaveLength(1);
    expect(a.manager.state).toBe('valid');
    expect(b.manager.state).toBe('valid');
  });

  it('a commit that stalls loses nothing: no other replica spends the token, and all adopt the held pair when the link returns', async () => {
    const c = cluster(['lockLeaseMs: 3000', 'tokenWaitTimeoutMs: 2000']);
    const [a, b] = await twoReplicasOnFirstToken(c);

    // a's token is rejected: a refreshes, marks rt-1 as in flight and sends it; then its link to the store stalls.
    const aReplay = a.manager.replacementFor(2);
    await c.clock.advance(0);
    expect(c.endpoint.last.grant).toEqual({ type: 'refresh_token', refreshToken: 'rt-1' });
    expect((await c.store.read(UPSTREAM))?.refreshInFlight?.owner).toBe('a');
    a.link.stall();
    c.endpoint.last.succeed();
    await c.clock.advance(600); // the commit times out
    await expect(aReplay).resolves.toMatchObject({ generation: 3, authorization: 'Bearer at-2' });
    expect(a.manager.status().storeWritePending).toBe(true);

    // For a minute, b's rejected requests get a clear 503 within the wait bound, and b never sends rt-1.
    let last: ProxyError | undefined;
    for (let i = 0; i < 12; i += 1) {
      const started = c.clock.now();
      const error = (await (async () => {
        const pending = outcome(b.manager.replacementFor(2));
        await c.clock.advance(2_000);
        return pending;
      })()) as ProxyError;
      expect(error).toBeInstanceOf(ProxyError);
      expect(error.code).toBe('REFRESH_PENDING');
      expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(c.clock.now() - started).toBeLessThanOrEqual(2_000);
      last = error;
      await c.clock.advance(3_000);
    }
    expect(c.endpoint.requests).toHaveLength(2);
    expect(c.endpoint.reused).toEqual([]);
    // Once a's lease lapsed, b took it, found a's live mark, and says why it waits.
    expect(last?.message).toMatch(/replica a sent this refresh token at .* and has not stored the result yet/);
    expect(b.manager.state).toBe('unavailable');
    expect(b.manager.status()).toMatchObject({ refreshing: false, refreshTokenInFlight: { by: 'a' } });

    // The link returns: a's pair is stored, and b adopts it without a token request.
    a.link.restore();
    await c.clock.advanceUntil(() => b.manager.current()?.generation === 3, 10_000);
    expect(b.manager.current()?.authorization).toBe('Bearer at-2');
    expect(a.manager.status().storeWritePending).toBeUndefined();
    expect((await c.store.read(UPSTREAM))?.dead).toBeUndefined();
    expect(c.endpoint.requests).toHaveLength(2);
    expect(c.endpoint.reused).toEqual([]);
    for (const replica of [a, b]) expect(replica.events('token_state_invalid')).toEqual([]);
  });

  it('a holder that vanished mid-refresh is replaced: after its mark expires the token is sent once more, and a rejection names the unfinished refresh', async () => {
    const c = cluster(['lockLeaseMs: 3000', 'inFlightMarkTtlMs: 20000', 'tokenWaitTimeoutMs: 2000']);
    const [a, b] = await twoReplicasOnFirstToken(c);
    void outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    expect(c.endpoint.requests).toHaveLength(2);
    // a dies: its link is gone for good and it runs no more code.
    a.link.stall();
    a.manager.stop();
    c.endpoint.last.succeed(); // the provider processed it: rt-1 is spent

    // b: 503s while the lease and then the mark block, never a second send before the mark expires.
    const blockedUntil = c.clock.now() + 20_000;
    while (c.clock.now() < blockedUntil - 2_500) {
      const pending = outcome(b.manager.replacementFor(2));
      await c.clock.advance(2_000);
      expect(((await pending) as ProxyError).code).toBe('REFRESH_PENDING');
      expect(c.endpoint.requests).toHaveLength(2);
    }
    await c.clock.advanceUntil(() => c.endpoint.requests.length === 3, 10_000);
    expect(c.endpoint.reused).toEqual(['rt-1']); // the one reuse that finds out
    c.endpoint.last.fail(invalidGrant());
    await c.clock.advance(0);
    expect(b.manager.state).toBe('dead');
    expect(b.manager.status().reason).toMatch(/an earlier refresh with this refresh token \(a, .*\) did not finish and probably spent it/);
    await c.clock.advance(120_000);
    expect(c.endpoint.requests).toHaveLength(3);
  });

  it('a holder that vanished before the provider saw its request: the survivor refreshes after the mark expires, no re-seed', async () => {
    const c = cluster(['lockLeaseMs: 3000', 'inFlightMarkTtlMs: 20000']);
    const [a, b] = await twoReplicasOnFirstToken(c);
    void outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    a.link.stall();
    a.manager.stop();
    void outcome(b.manager.replacementFor(2));
    await c.clock.advanceUntil(() => c.endpoint.requests.length === 3, 30_000);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    expect(b.manager.current()?.generation).toBe(3);
    expect(b.manager.state).toBe('valid');
  });

  it('a live pair is never traded for a dead verdict: it is written over the verdict and every replica adopts it', async () => {
    const c = cluster(['lockLeaseMs: 3000', 'inFlightMarkTtlMs: 10000', 'tokenWaitTimeoutMs: 2000']);
    const [a, b] = await twoReplicasOnFirstToken(c);
    void outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    a.link.stall();
    c.endpoint.last.succeed(); // a holds the only live pair (generation 3), unstored
    await c.clock.advance(600);
    expect(a.manager.current()?.generation).toBe(3);

    // Past the mark, b reuses rt-1, which a spent, and gets the verdict: dead at generation 3.
    void outcome(b.manager.replacementFor(2));
    await c.clock.advanceUntil(() => c.endpoint.requests.length === 3, 30_000);
    c.endpoint.last.fail(invalidGrant());
    await c.clock.advance(0);
    expect((await c.store.read(UPSTREAM))?.dead).toBeDefined();
    expect(a.manager.current()?.generation).toBe(3); // a keeps serving its pair

    a.link.restore();
    await c.clock.advanceUntil(() => b.manager.current() !== undefined, 10_000);
    const stored = await c.store.read(UPSTREAM);
    expect(stored?.dead).toBeUndefined();
    expect(stored?.accessToken).toBe('at-2');
    expect(stored?.generation).toBe(4);
    expect(b.manager.state).toBe('valid');
    expect(b.manager.current()?.authorization).toBe('Bearer at-2');
    expect(a.events('record_written_over')).toHaveLength(1);
  });

  it("a pair held only in memory is never written as an annotation over another writer's record of the same generation", async () => {
    const c = cluster(['lockLeaseMs: 3000', 'inFlightMarkTtlMs: 10000']);
    const [a, b] = await twoReplicasOnFirstToken(c);
    void outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    a.link.stall();
    c.endpoint.last.succeed(); // a: generation 3 (at-2), unstored
    await c.clock.advance(600);
    // Past a's mark, b sends rt-1 again and (this provider tolerating it) gets generation 3 of its own.
    void outcome(b.manager.replacementFor(2));
    await c.clock.advanceUntil(() => c.endpoint.requests.length === 3, 30_000);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    expect((await c.store.read(UPSTREAM))?.accessToken).toBe('at-3');

    // A request a replayed with its own pair was accepted: a trusts it, but must not write its pair as a note.
    a.link.restore();
    a.manager.replayEnded({ generation: 3, accepted: true });
    await c.clock.advance(0);
    expect((await c.store.read(UPSTREAM))?.accessToken).toBe('at-3');
    await c.clock.advanceUntil(() => a.manager.current()?.authorization === 'Bearer at-3', 10_000);
    expect(a.events('commit_stale')).toHaveLength(1);
  });

  it('a firewall page frees the mark at once (the token never reached the provider), so another replica is not blocked', async () => {
    const c = cluster(['lockLeaseMs: 3000']);
    const [a, b] = await twoReplicasOnFirstToken(c);
    void outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    c.endpoint.last.failUnseen(wafPage());
    await c.clock.advance(0);
    expect((await c.store.read(UPSTREAM))?.refreshInFlight).toBeUndefined();
    expect(a.manager.state).toBe('unavailable');
    void outcome(b.manager.replacementFor(2));
    await c.clock.advance(0);
    expect(c.endpoint.requests).toHaveLength(3);
    expect(c.endpoint.last.grant).toEqual({ type: 'refresh_token', refreshToken: 'rt-1' });
    c.endpoint.last.succeed();
    await c.clock.advanceUntil(() => a.manager.current()?.generation === 3, 5_000);
    expect(c.endpoint.reused).toEqual([]);
  });

  it('the rejection memory travels with the record: on an always-403 path all replicas together refresh once per minute', async () => {
    const c = cluster();
    const [a, b] = await twoReplicasOnFirstToken(c);
    const replicas = [a, b];
    let replays = 0;
    for (let request = 0; request < 20; request += 1) {
      const replica = replicas[request % 2] as Replica;
      const rejected = replica.manager.current()?.generation ?? 0;
      if (replica.manager.replayDecision(rejected) === 'none') continue; // the 403 goes back as is
      const pending = replica.manager.replacementFor(rejected);
      await c.clock.advance(0);
      if (c.endpoint.requests.length > 1 && c.endpoint.last.sentAt === c.clock.now()) c.endpoint.last.succeed();
      await c.clock.advance(0);
      const fresh = await pending;
      replays += 1;
      replica.manager.replayEnded({ generation: fresh?.generation ?? 0, accepted: false }); // the replay is refused too
      await c.clock.advance(100);
    }
    expect(c.endpoint.requests).toHaveLength(2); // the first token, and one refresh for all 20 rejections
    expect(replays).toBe(1);
    expect((await c.store.read(UPSTREAM))?.fetchedAfterRejection).toBe(true);
    expect(a.events('replay_skipped').length + b.events('replay_skipped').length).toBeGreaterThan(0);

    // A minute later a rejection is taken as about the token again (a revoked token recovers).
    await c.clock.advance(60_000);
    expect(b.manager.replayDecision(b.manager.current()?.generation ?? 0)).toBe('refresh');
  });

  it('the mark is born with the record: a replica that has not adopted the new token yet refreshes into it, without a token request', async () => {
    const c = cluster();
    const [a, b] = await twoReplicasOnFirstToken(c);
    b.link.stall(); // b hears of nothing for now
    const pending = a.manager.replacementFor(2);
    await c.clock.advance(0);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    await pending;
    b.link.restore();
    // b's own request with generation 2 is refused: its "refresh" finds generation 3 stored and takes it.
    const fresh = await b.manager.replacementFor(2);
    expect(fresh?.generation).toBe(3);
    expect(c.endpoint.requests).toHaveLength(2);
    expect(b.manager.replayDecision(3)).toBe('none');
  });

  it('an accepted replay removes the mark for every replica; a rejected upload (nothing replayed) never sets it', async () => {
    const c = cluster();
    const [a, b] = await twoReplicasOnFirstToken(c);
    const pending = a.manager.replacementFor(2);
    await c.clock.advance(0);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    await pending;
    expect(b.manager.replayDecision(3)).toBe('none');
    a.manager.replayEnded({ generation: 3, accepted: true });
    await c.clock.advance(0);
    expect((await c.store.read(UPSTREAM))?.fetchedAfterRejection).toBeUndefined();
    // The upstream revokes the token early: a plain GET's rejection refreshes and replays, on any replica.
    expect(b.manager.replayDecision(3)).toBe('refresh');

    a.manager.onRejection(3, false);
    await c.clock.advance(0);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    expect(a.manager.current()?.generation).toBe(4);
    expect((await c.store.read(UPSTREAM))?.fetchedAfterRejection).toBeUndefined();
    expect(a.manager.replayDecision(4)).toBe('refresh');
  });

  it('a replay accepted here trusts the token on this replica at once', async () => {
    const c = cluster();
    const [a] = await twoReplicasOnFirstToken(c);
    const pending = a.manager.replacementFor(2);
    await c.clock.advance(0);
    c.endpoint.last.succeed();
    await c.clock.advance(0);
    await pending;
    expect(a.manager.replayDecision(3)).toBe('none');
    a.manager.replayEnded({ generation: 3, accepted: true });
    expect(a.manager.replayDecision(3)).toBe('refresh');
  });

  it('a rejection during a token endpoint outage gets a 503 TOKEN_ENDPOINT_UNAVAILABLE, not the stale rejection', async () => {
    const c = cluster();
    const [a] = await twoReplicasOnFirstToken(c);
    const first = outcome(a.manager.replacementFor(2));
    await c.clock.advance(0);
    c.endpoint.last.fail(wafPage());
    await c.clock.advance(0);
    expect(((await first) as ProxyError).code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    expect(a.manager.replayDecision(2)).toBe('unavailable');
    const second = (await outcome(a.manager.replacementFor(2))) as ProxyError;
    expect(second.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    expect(c.endpoint.requests).toHaveLength(2); // the second rejection did not start a token request
  });
});
