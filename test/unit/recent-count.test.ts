import { describe, expect, it } from 'vitest';
import { RecentCount } from '../../src/tokens/recent-count.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const t0 = Date.parse('2026-11-22T10:00:30Z');

describe('RecentCount (events in the last hour, to the minute)', () => {
  it('counts events as they happen', () => {
    const count = new RecentCount();
    expect(count.total(t0)).toBe(0);
    count.add(t0);
    count.add(t0 + 1000);
    count.add(t0 + 10 * MINUTE);
    expect(count.total(t0 + 10 * MINUTE)).toBe(3);
  });

  it('forgets an event once it is more than an hour old, and not before', () => {
    const count = new RecentCount();
    count.add(t0);
    count.add(t0 + 30 * MINUTE);
    expect(count.total(t0 + HOUR - MINUTE)).toBe(2);
    expect(count.total(t0 + HOUR)).toBe(1);
    expect(count.total(t0 + 30 * MINUTE + HOUR)).toBe(0);
  });

  it('reuses a slot for a new hour without carrying the old hour over', () => {
    const count = new RecentCount();
    for (let i = 0; i < 5; i++) count.add(t0);
    count.add(t0 + HOUR); // the same slot, one hour on
    expect(count.total(t0 + HOUR)).toBe(1);
    expect(count.total(t0 + 3 * HOUR)).toBe(0);
  });

  it('takes other windows and bucket sizes', () => {
    const count = new RecentCount(10_000, 1000);
    count.add(0);
    count.add(5000);
    expect(count.total(9999)).toBe(2);
    expect(count.total(10_000)).toBe(1);
  });
});
