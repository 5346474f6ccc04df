import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { storeOpenedLater } from '../../src/store/store-opened-later.js';
import type { TokenStore } from '../../src/store/token-store.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

const refused = () => new StoreError('cannot connect to redis 127.0.0.1:1/0: connect ECONNREFUSED', { retryable: true });

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a store opened later', () => {
  it('fails every operation at once with the reason, then hands over to the real store and tells its listeners', async () => {
    const { logger, lines } = capture();
    let attempts = 0;
    const real = createMemoryStore();
    const store = storeOpenedLater({
      open: async () => {
        attempts += 1;
        if (attempts < 2) throw refused();
        return real;
      },
      description: 'redis 127.0.0.1:1/0',
      firstError: refused(),
      logger,
    });
    const heard: [string, number][] = [];
    store.subscribe((key, generation) => heard.push([key, generation]));
    expect(store.description).toBe('redis 127.0.0.1:1/0');
    await expect(store.read('apiax')).rejects.toThrow(/token store not available yet: .*ECONNREFUSED/);
    await expect(store.acquireLock('apiax', 'me', 1000)).rejects.toBeInstanceOf(StoreError);

    await until(() => heard.length > 0);
    expect(heard).toEqual([['*', -1]]); // "re-read": the store just became reachable
    expect(store.description).toBe('memory (lost on restart)');
    const record = { generation: 1, refreshToken: 'r', obtainedAt: 1, source: 'seed' as const, writer: 'me' };
    expect(await store.compareAndSet('apiax', 0, record)).toBe('applied');
    expect(heard).toContainEqual(['apiax', 1]); // the listener registered early now hears the real store
    // The retry that failed for the same reason is not logged again: a long outage must not flood the log.
    expect(lines.map((line) => line.event)).toEqual(['store_unreachable', 'store_connected']);
    expect(lines[1]).toMatchObject({ attempts: 3 });
    await store.close();
  });

  it('stops trying when closed, and closes a store that opens after that', async () => {
    const { logger } = capture();
    let release: (store: TokenStore) => void = () => undefined;
    let closedLate = false;
    const store = storeOpenedLater({
      open: () =>
        new Promise<TokenStore>((resolve) => {
          release = resolve;
        }),
      description: 'redis',
      firstError: refused(),
      logger,
    });
    await new Promise((resolve) => setTimeout(resolve, 300)); // the first retry is under way
    await store.close();
    release({ ...createMemoryStore(), close: async () => void (closedLate = true) });
    await until(() => closedLate);
    await expect(store.read('apiax')).rejects.toThrow(/not available yet/);
  });
});
