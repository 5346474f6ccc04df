/** The refresh lock as a lease, on a real memory store with fake time. */
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import { takeLease } from '../../../src/tokens/refresh-lease.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { linkTo } from '../../helpers/store-link.js';

const TTL = 3_000;

function setup() {
  const clock = new FakeClock();
  const store = createMemoryStore({ now: () => clock.now() });
  return { clock, store };
}

describe('refresh lease', () => {
  it('is renewed every third of its TTL for as long as it is held, so nobody else takes it', async () => {
    const { clock, store } = setup();
    const lease = await takeLease({ store, key: 'k', owner: 'a', ttlMs: TTL, clock });
    expect(lease).toBeDefined();
    for (let second = 0; second < 30; second += 1) {
      await clock.advance(1_000);
      expect(await store.acquireLock('k', 'b', TTL)).toBe(false);
      expect(lease?.held()).toBe(true);
    }
    await lease?.release();
    expect(await store.acquireLock('k', 'b', TTL)).toBe(true);
  });

  it('is not taken while another owner holds it', async () => {
    const { clock, store } = setup();
    await takeLease({ store, key: 'k', owner: 'a', ttlMs: TTL, clock });
    expect(await takeLease({ store, key: 'k', owner: 'b', ttlMs: TTL, clock })).toBeUndefined();
  });

  it('of a holder that vanished is free within one TTL', async () => {
    const { clock, store } = setup();
    const link = linkTo(store, clock, 'a');
    await takeLease({ store: link, key: 'k', owner: 'a', ttlMs: TTL, clock });
    link.stall(); // a's renewals no longer reach the store, as if a were gone
    let taken = false;
    const start = clock.now();
    while (!taken) {
      await clock.advance(100);
      taken = await store.acquireLock('k', 'b', TTL);
    }
    expect(clock.now() - start).toBeLessThanOrEqual(TTL);
  });

  it('counts as lost once no renewal was confirmed for a whole TTL, and says so once', async () => {
    const { clock, store } = setup();
    const link = linkTo(store, clock, 'a');
    const lost: string[] = [];
    const lease = await takeLease({ store: link, key: 'k', owner: 'a', ttlMs: TTL, clock, onLost: (why) => lost.push(why) });
    link.stall();
    await clock.advance(TTL - 1);
    expect(lease?.held()).toBe(true);
    await clock.advance(1);
    expect(lease?.held()).toBe(false);
    expect(lease?.held()).toBe(false);
    expect(lost).toEqual(['the refresh lock could not be renewed in time']);
  });

  it('is lost for good when another owner took it meanwhile, even after the holder can reach the store again', async () => {
    const { clock, store } = setup();
    const link = linkTo(store, clock, 'a');
    const lease = await takeLease({ store: link, key: 'k', owner: 'a', ttlMs: TTL, clock });
    link.stall();
    await clock.advance(TTL + 1);
    expect(await store.acquireLock('k', 'b', TTL)).toBe(true);
    link.restore();
    await clock.advance(TTL / 3 + 1); // a renews: refused, since b holds it
    expect(lease?.held()).toBe(false);
    // b still holds it: a's renewal was refused, not forced.
    expect(await store.acquireLock('k', 'a', TTL)).toBe(false);
  });
});
