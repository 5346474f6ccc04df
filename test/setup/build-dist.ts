/**
 * Global setup of the integration project (vitest.config.ts): compiles src/ to dist/, which the CLI and
 * proxy child processes run, once per test run and before any worker starts, so no two workers run tsc
 * into dist/ at once. Skipped when dist/ is newer than every source. Test runs started at the same time in
 * this working tree take turns through a lock directory, and the second finds dist/ fresh.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const mainJs = join(repoRoot, 'dist', 'main.js');
const lockDir = join(repoRoot, 'node_modules', '.cache', 'oauth-sidecar-build.lock');
/** A lock older than this was left by a run that died (a build takes seconds). */
const STALE_LOCK_MS = 5 * 60_000;
const LOCK_WAIT_MS = 3 * 60_000;

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function mtimeOrZero(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function fresh(): boolean {
  const sources = Math.max(
    newestMtime(join(repoRoot, 'src')),
    newestMtime(join(repoRoot, 'tsconfig.build.json')),
    newestMtime(join(repoRoot, 'tsconfig.json')),
  );
  return mtimeOrZero(mainJs) > sources;
}

function removeStaleLock(): void {
  try {
    rmdirSync(lockDir);
  } catch {
    // another run removed it first
  }
}

/** Takes the lock directory (mkdir is atomic), waiting for another run's build to finish first. */
async function lock(): Promise<() => void> {
  mkdirSync(join(lockDir, '..'), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      return () => rmdirSync(lockDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (Date.now() - mtimeOrZero(lockDir) > STALE_LOCK_MS) removeStaleLock();
    else if (Date.now() > deadline)
      throw new Error(`another test run has been building dist/ for minutes (lock ${lockDir}); remove the lock if no build runs`);
    else await sleep(200);
  }
}

export default async function buildDist(): Promise<void> {
  if (fresh()) return;
  const unlock = await lock();
  try {
    if (fresh()) return; // another run built it while we waited
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: repoRoot }).catch(
      (error: { stdout?: string; stderr?: string }) => {
        // tsc writes dist/ even when it reports errors: date it back so that the next run builds again.
        if (mtimeOrZero(mainJs) > 0) utimesSync(mainJs, 0, 0);
        throw new Error(`npm run build failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
      },
    );
  } finally {
    unlock();
  }
}
