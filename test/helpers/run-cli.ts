/**
 * Runs the real CLI (`node bin/oauth-sidecar.js`, which imports dist/) as a child process. The child gets
 * a minimal environment (PATH, HOME and what the test passes), so a secret can only reach it where the
 * test put it. Every child is killed when the test that started it finishes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(repoRoot, 'bin', 'oauth-sidecar.js');

export interface CliOptions {
  /** Added to the minimal environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to the child's stdin, which is then closed (stdin is ignored when absent). */
  input?: string;
  /** The child is killed (and the result says so) after this long. Default 20 s. */
  timeoutMs?: number;
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * dist/ is built once per test run by the integration project's global setup (test/setup/build-dist.ts),
 * never here: two workers compiling into dist/ at once could each run a half-written file. This only
 * checks that the build is there.
 */
export async function ensureBuilt(): Promise<void> {
  if (!existsSync(join(repoRoot, 'dist', 'main.js'))) {
    throw new Error(
      'dist/main.js is missing: the global setup test/setup/build-dist.ts builds it when the tests run with vitest.config.ts (npm test, npx vitest run <files>); or run npm run build',
    );
  }
}

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

function spawnCli(args: readonly string[], options: CliOptions): ChildProcess {
  const stdin = options.input === undefined ? 'ignore' : 'pipe';
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: childEnv(options.env),
    stdio: [stdin, 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Runs the CLI to completion. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  stderr(): string;
  /** stdout lines that are JSON (the log), parsed. */
  logs(): Record<string, unknown>[];
  /** Resolves with the first log line that matches, or rejects after `timeoutMs` (or when the child exits first). */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves when the child has exited. */
  readonly exited: Promise<CliResult>;
}

/** Starts a long-running CLI command (serve). */
export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr });
      notify();
    });
  });
  const logs = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          return { unparsable: line };
        }
      });
  const waitForLog = (match: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = logs().find(match);
        if (found) return done(() => resolve(found));
        if (child.exitCode !== null || child.signalCode !== null) {
          done(() =>
            reject(new Error(`the CLI exited (${child.exitCode ?? child.signalCode}) first.\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
          );
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no matching log line within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  return { child, stdout: () => stdout, stderr: () => stderr, logs, waitForLog, exited };
}
