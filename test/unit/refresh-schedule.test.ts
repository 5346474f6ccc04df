import { describe, expect, it } from 'vitest';
import { backoffDelay, refreshAt } from '../../src/tokens/refresh-schedule.js';

const DEFAULT_RULE = { fraction: 0.8, seconds: 60 };
const T0 = 1_700_000_000_000;
const S = 1000;

/** Seconds after T0 at which a token with `lifetimeSeconds` is refreshed. */
function refreshAfter(lifetimeSeconds: number, rule = DEFAULT_RULE): number {
  return (refreshAt(T0, T0 + lifetimeSeconds * S, rule) - T0) / S;
}

describe('refreshAt: 80% of the lifetime or 60 s before expiry, whichever is earlier, never before half the lifetime', () => {
  it.each([
    // lifetime, refresh after (s), which rule decides
    [5 * 3600, 4 * 3600], //   Collaborate default: 80% (4 h) is earlier than expiry-60 s (4 h 59 min)
    [30 * 60, 24 * 60], //     Apiax: 80% (24 min) is earlier than 29 min
    [5 * 60, 4 * 60], //       v3 per the announcement: both rules say 4 min
    [60, 30], //               expiry-60 s would be "now": half the lifetime instead
    [20, 10], //               expiry-60 s is in the past: half the lifetime
    [2 * 60, 60], //           expiry-60 s (60 s) is earlier than 80% (96 s) and exactly half
    [4 * 60, 3 * 60], //       expiry-60 s (180 s) is earlier than 80% (192 s)
    [2419200, 2419200 * 0.8], // a month: 80%
  ])('a %i s token is refreshed after %d s', (lifetime, expected) => {
    expect(refreshAfter(lifetime)).toBeCloseTo(expected, 6);
  });

  it('is always inside [half the lifetime, expiry] for any lifetime', () => {
    for (let lifetime = 1; lifetime <= 100_000; lifetime = Math.ceil(lifetime * 1.3)) {
      const after = refreshAfter(lifetime);
      expect(after, `lifetime ${lifetime}`).toBeGreaterThanOrEqual(lifetime / 2);
      expect(after, `lifetime ${lifetime}`).toBeLessThanOrEqual(lifetime * 0.8);
      expect(after, `lifetime ${lifetime}`).toBeLessThanOrEqual(Math.max(lifetime - 60, lifetime / 2));
    }
  });

  it('follows a configured rule', () => {
    expect(refreshAfter(3600, { fraction: 0.5, seconds: 10 })).toBe(1800);
    expect(refreshAfter(100, { fraction: 0.95, seconds: 10 })).toBe(90);
    expect(refreshAfter(3600, { fraction: 0.99, seconds: 0 })).toBeCloseTo(3564, 6);
  });

  it('refreshes at once a token that is already expired (no negative lifetimes)', () => {
    expect(refreshAt(T0, T0 - 5 * S, DEFAULT_RULE)).toBe(T0);
    expect(refreshAt(T0, T0, DEFAULT_RULE)).toBe(T0);
  });
});

describe('backoffDelay', () => {
  const low = () => 0;
  const high = () => 0.999_999;

  it('grows exponentially from about 1 s and is capped at 60 s', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 20, 1000].map((failures) => backoffDelay(failures, undefined, high));
    expect(ceilings.map((ms) => Math.round(ms / 1000))).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    for (let i = 1; i < ceilings.length; i++) expect(ceilings[i]).toBeGreaterThanOrEqual(ceilings[i - 1] as number);
    expect(backoffDelay(0, undefined, high)).toBeLessThanOrEqual(1000);
  });

  it('jitters between half and all of the base delay', () => {
    for (const failures of [1, 3, 7, 12]) {
      const base = Math.min(60_000, 1000 * 2 ** (failures - 1));
      expect(backoffDelay(failures, undefined, low)).toBe(base / 2);
      expect(backoffDelay(failures, undefined, () => 0.5)).toBe(base * 0.75);
      expect(backoffDelay(failures, undefined, high)).toBeLessThan(base);
      expect(backoffDelay(failures, undefined, high)).toBeGreaterThan(base * 0.99);
    }
  });

  it('spreads retries with the default random source, always within the bounds', () => {
    const samples = Array.from({ length: 500 }, () => backoffDelay(4, undefined));
    for (const delay of samples) {
      expect(delay).toBeGreaterThanOrEqual(4000);
      expect(delay).toBeLessThan(8000);
    }
    expect(new Set(samples).size).toBeGreaterThan(100);
  });

  it('honours Retry-After when it asks for longer, even beyond the 60 s cap', () => {
    expect(backoffDelay(1, 30_000, high)).toBe(30_000);
    expect(backoffDelay(20, 120_000, high)).toBe(120_000);
    // A shorter Retry-After does not shorten the backoff.
    expect(backoffDelay(6, 1_000, low)).toBe(16_000);
    expect(backoffDelay(6, 0, low)).toBe(16_000);
  });
});
