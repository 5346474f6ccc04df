/**
 * The TokenStore contract (src/store/token-store.ts), as one suite that every implementation runs:
 * memory and file now, Redis later. Only the interface is used here, never an implementation detail,
 * so a new store passes this suite or is not a TokenStore. Notifications may arrive asynchronously
 * (Redis pub/sub), so the suite waits for them instead of expecting them synchronously.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { TokenRecord, TokenStore } from '../../src/store/token-store.js';

export type MakeStore = () => Promise<TokenStore>;

const KEY = 'collaborate';
const LONG_TTL = 30_000;

/** A full token record of `generation`; `overrides` replace fields. */
export function tokenRecord(generation: number, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    generation,
    accessToken: `access-${generation}`,
    accessTokenExpiresAt: 1_700_000_000_000 + generation * 1000,
    refreshToken: `refresh-${generation}`,
    obtainedAt: 1_700_000_000_000,
    source: generation === 1 ? 'seed' : 'refresh',
    writer: 'replica-a',
    ...overrides,
  };
}

export function describeTokenStoreContract(name: string, makeStore: MakeStore): void {
  /** A fresh store, closed when the test finishes. */
  async function open(): Promise<TokenStore> {
    const store = await makeStore();
    onTestFinished(() => store.close());
    return store;
  }

  /** Collects notifications; unsubscribed when the test finishes. */
  function record(store: TokenStore): [string, number][] {
    const events: [string, number][] = [];
    const unsubscribe = store.subscribe((key, generation) => events.push([key, generation]));
    onTestFinished(() => {
      unsubscribe();
    });
    return events;
  }

  describe(`TokenStore contract: ${name}`, () => {
    describe('read and compareAndSet', () => {
      it('reads nothing for a key that was never written', async () => {
        const store = await open();
        expect(await store.read(KEY)).toBeUndefined();
        expect(typeof store.description).toBe('string');
        expect(store.description.length).toBeGreaterThan(0);
      });

      it('creates a record only when the expected generation is 0 (absent), and reads it back field for field', async () => {
        const store = await open();
        const full = tokenRecord(1, {
          refreshTokenExpiresAt: 1_800_000_000_000,
          refreshInFlight: { since: 1_700_000_000_500, refreshTokenFingerprint: 'abcd1234', owner: 'replica-a' },
          seedFingerprint: 'feedbeef',
        });
        expect(await store.compareAndSet(KEY, 5, full)).toBe('stale');
        expect(await store.read(KEY)).toBeUndefined();
        expect(await store.compareAndSet(KEY, 0, full)).toBe('applied');
        expect(await store.read(KEY)).toEqual(full);
      });

      it('applies a write only on the expected generation: a stale writer loses and changes nothing', async () => {
        const store = await open();
        expect(await store.compareAndSet(KEY, 0, tokenRecord(1))).toBe('applied');
        expect(await store.compareAndSet(KEY, 0, tokenRecord(1, { accessToken: 'second-creator' }))).toBe('stale');
        expect(await store.compareAndSet(KEY, 1, tokenRecord(2, { writer: 'replica-a' }))).toBe('applied');
        // replica-b refreshed from generation 1 too, but replica-a was first: b's write must not land.
        expect(await store.compareAndSet(KEY, 1, tokenRecord(2, { accessToken: 'from-b', writer: 'replica-b' }))).toBe('stale');
        expect(await store.compareAndSet(KEY, 3, tokenRecord(4))).toBe('stale');
        expect(await store.read(KEY)).toEqual(tokenRecord(2, { writer: 'replica-a' }));
      });

      it('accepts an annotation written at the same generation, and the next generation after it', async () => {
        const store = await open();
        await store.compareAndSet(KEY, 0, tokenRecord(1));
        const marked = tokenRecord(1, { refreshInFlight: { since: 1, refreshTokenFingerprint: 'fp', owner: 'replica-a' } });
        expect(await store.compareAndSet(KEY, 1, marked)).toBe('applied');
        expect(await store.read(KEY)).toEqual(marked);
        const dead = tokenRecord(1, { dead: { at: 2, reason: 'invalid_grant' } });
        expect(await store.compareAndSet(KEY, 1, dead)).toBe('applied');
        expect((await store.read(KEY))?.dead).toEqual({ at: 2, reason: 'invalid_grant' });
        expect(await store.compareAndSet(KEY, 1, tokenRecord(2))).toBe('applied');
        expect(await store.compareAndSet(KEY, 1, marked)).toBe('stale');
        expect(await store.read(KEY)).toEqual(tokenRecord(2));
      });

      it('keeps keys independent', async () => {
        const store = await open();
        await store.compareAndSet('a', 0, tokenRecord(1, { accessToken: 'a-1' }));
        await store.compareAndSet('b', 0, tokenRecord(1, { accessToken: 'b-1' }));
        expect(await store.compareAndSet('a', 1, tokenRecord(2, { accessToken: 'a-2' }))).toBe('applied');
        expect((await store.read('a'))?.accessToken).toBe('a-2');
        expect((await store.read('b'))?.accessToken).toBe('b-1');
        expect(await store.read('c')).toBeUndefined();
      });

      it('lets exactly one of many concurrent writers from the same generation win', async () => {
        const store = await open();
        await store.compareAndSet(KEY, 0, tokenRecord(1));
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.compareAndSet(KEY, 1, tokenRecord(2, { accessToken: `writer-${i}` }))),
        );
        expect(results.filter((result) => result === 'applied')).toHaveLength(1);
        const winner = results.indexOf('applied');
        expect((await store.read(KEY))?.accessToken).toBe(`writer-${winner}`);
      });

      it('returns a copy: mutating a record after writing or reading it does not change the store', async () => {
        const store = await open();
        const written = { ...tokenRecord(1) };
        await store.compareAndSet(KEY, 0, written);
        (written as { accessToken: string }).accessToken = 'mutated-after-write';
        const read = await store.read(KEY);
        if (read && !Object.isFrozen(read)) (read as { accessToken: string }).accessToken = 'mutated-after-read';
        expect((await store.read(KEY))?.accessToken).toBe('access-1');
      });
    });

    describe('refresh locks', () => {
      it('refuses a lock held by another owner, and lets the holder re-acquire and renew it', async () => {
        const store = await open();
        expect(await store.acquireLock(KEY, 'a', LONG_TTL)).toBe(true);
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(false);
        expect(await store.acquireLock(KEY, 'a', LONG_TTL)).toBe(true);
        expect(await store.renewLock(KEY, 'a', LONG_TTL)).toBe(true);
        expect(await store.renewLock(KEY, 'b', LONG_TTL)).toBe(false);
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(false);
      });

      it('ignores a release by a non-owner; a release by the owner frees the lock', async () => {
        const store = await open();
        await store.acquireLock(KEY, 'a', LONG_TTL);
        await store.releaseLock(KEY, 'b');
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(false);
        await store.releaseLock(KEY, 'a');
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(true);
        expect(await store.renewLock(KEY, 'a', LONG_TTL)).toBe(false);
        // Releasing a lock nobody holds is harmless.
        await store.releaseLock('never-locked', 'a');
      });

      it('lets a lock expire after its TTL, after which the old owner cannot renew it', async () => {
        const store = await open();
        expect(await store.acquireLock(KEY, 'a', 300)).toBe(true);
        expect(await store.acquireLock(KEY, 'b', 300)).toBe(false);
        await sleep(450);
        expect(await store.renewLock(KEY, 'a', LONG_TTL)).toBe(false);
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(true);
        expect(await store.acquireLock(KEY, 'a', LONG_TTL)).toBe(false);
      });

      it('extends the TTL on renew and on re-acquire by the owner', async () => {
        const store = await open();
        await store.acquireLock(KEY, 'a', 600);
        await sleep(200);
        expect(await store.renewLock(KEY, 'a', 5_000)).toBe(true);
        await sleep(600);
        expect(await store.acquireLock(KEY, 'b', LONG_TTL)).toBe(false);

        await store.acquireLock('other', 'a', 600);
        await sleep(200);
        expect(await store.acquireLock('other', 'a', 5_000)).toBe(true);
        await sleep(600);
        expect(await store.acquireLock('other', 'b', LONG_TTL)).toBe(false);
      });

      it('keeps locks of different keys independent', async () => {
        const store = await open();
        expect(await store.acquireLock('a', 'owner-1', LONG_TTL)).toBe(true);
        expect(await store.acquireLock('b', 'owner-2', LONG_TTL)).toBe(true);
        expect(await store.acquireLock('a', 'owner-2', LONG_TTL)).toBe(false);
      });

      it('gives the lock to exactly one of many concurrent owners', async () => {
        const store = await open();
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.acquireLock(KEY, `owner-${i}`, LONG_TTL)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('subscribe', () => {
      it('announces applied writes with their key and generation, and never stale ones', async () => {
        const store = await open();
        const events = record(store);
        await store.compareAndSet(KEY, 0, tokenRecord(1));
        await vi.waitFor(() => expect(events).toContainEqual([KEY, 1]));
        expect(await store.compareAndSet(KEY, 0, tokenRecord(1, { accessToken: 'stale' }))).toBe('stale');
        expect(await store.compareAndSet(KEY, 7, tokenRecord(8))).toBe('stale');
        await store.compareAndSet('other', 0, tokenRecord(1));
        await store.compareAndSet(KEY, 1, tokenRecord(2));
        await vi.waitFor(() => expect(events).toContainEqual([KEY, 2]));
        // Annotations at the same generation may be announced or not, but nothing else may be.
        expect(events.filter(([key]) => key === KEY).map(([, generation]) => generation)).toEqual([1, 2]);
        expect(events).toContainEqual(['other', 1]);
        expect(events.some(([, generation]) => generation === 8)).toBe(false);
      });

      it('stops announcing after unsubscribe, and one failing listener does not silence the others', async () => {
        const store = await open();
        const kept: number[] = [];
        const dropped: number[] = [];
        const unsubscribeThrowing = store.subscribe(() => {
          throw new Error('listener bug');
        });
        onTestFinished(() => {
          unsubscribeThrowing();
        });
        const unsubscribeDropped = store.subscribe((_key, generation) => dropped.push(generation));
        const unsubscribeKept = store.subscribe((_key, generation) => kept.push(generation));
        onTestFinished(() => {
          unsubscribeKept();
        });
        await store.compareAndSet(KEY, 0, tokenRecord(1));
        await vi.waitFor(() => expect(dropped).toEqual([1]));
        unsubscribeDropped();
        await store.compareAndSet(KEY, 1, tokenRecord(2));
        await vi.waitFor(() => expect(kept).toEqual([1, 2]));
        expect(dropped).toEqual([1]);
      });
    });

    describe('close', () => {
      it('finishes a write in flight before it resolves', async () => {
        const store = await makeStore();
        let settled = false;
        const write = store.compareAndSet(KEY, 0, tokenRecord(1)).finally(() => (settled = true));
        await store.close();
        expect(settled).toBe(true);
        expect(await write).toBe('applied');
      });
    });
  });
}
