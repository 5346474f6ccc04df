import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two projects (lanes). `fast`: the unit tests and the store contract on memory and file, with no Redis and
 * no child processes, for the edit loop (`npm run test:fast`). `integration`: everything else (real proxies,
 * CLI and proxy processes, redis-server processes); its global setup builds dist/ once for the children.
 * `npm test` and `npx vitest run` run both.
 */
const FAST = ['test/unit/**/*.test.ts', 'test/contract/memory-store.test.ts', 'test/contract/file-store.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real servers and child processes; two workers fit the 2-core CI box.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'fast', include: FAST } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...FAST],
          globalSetup: ['test/setup/build-dist.ts'],
        },
      },
    ],
  },
});
