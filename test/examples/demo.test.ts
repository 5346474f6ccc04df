/**
 * `npm run demo` (examples/demo/run.mjs): the stand-ins and the real proxy come up, the printed curl
 * URLs work for all three upstreams, a token is rejected upstream, refreshed and the request replayed,
 * and the demo exits 0 by itself after --seconds without leaving a process or a temporary directory.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ensureBuilt, repoRoot } from '../helpers/run-cli.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run demo', () => {
  it('shows a rejection, a refresh and a replay, serves all three upstreams, and stops by itself', async () => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'examples', 'demo', 'run.mjs'), '--seconds', '12', '--lifetime', '3', '--free-ports'],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    const waiters = new Set<() => void>();
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      for (const waiter of waiters) waiter();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })),
    );
    const waitFor = (pattern: RegExp, timeoutMs = 15_000) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(stdout);
          if (!match) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(match);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });

    const pid = Number((await waitFor(/demo: proxy pid (\d+)/))[1]);
    const configDir = (await waitFor(/config (\S+)\/proxy\.yaml/))[1] ?? '';
    await waitFor(/demo: ready\./);
    const standInUrls = [...((await waitFor(/demo: stand-ins (.*);/))[1] ?? '').matchAll(/http:\/\/127\.0\.0\.1:\d+/g)].map((m) => m[0]);
    expect(standInUrls).toHaveLength(3);

    // The printed copy-paste commands, run as fetches.
    const curls = [...stdout.matchAll(/^ {2}curl -s (\S+)$/gm)].map((m) => m[1] ?? '');
    for (const name of ['collaborate', 'apiax', 'v3']) {
      const url = curls.find((u) => new URL(u).pathname.startsWith(`/${name}/`));
      expect(url, `a curl command for ${name}`).toBeDefined();
      const res = await fetch(url!);
      expect(res.status, `${name} via ${url}`).toBe(200);
      expect(await res.json()).toMatchObject({});
    }
    const statusUrl = curls.find((u) => u.endsWith('/status'));
    expect(statusUrl).toBeDefined();
    expect((await fetch(statusUrl!)).status).toBe(200);

    const result = await exited;
    expect(result, `stderr:\n${stderr}`).toEqual({ code: 0, signal: null });

    // stdout is not a terminal, so the proxy's log lines are relayed as JSON.
    const logs = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logs.some((l) => l.event === 'started')).toBe(true);
    const refreshes = logs.filter((l) => l.event === 'token_refreshed' && (l.reason === 'rejected' || l.reason === 'scheduled'));
    expect(refreshes.length, stdout).toBeGreaterThan(0);
    const replayed = logs.filter((l) => l.msg === 'request' && l.replayed === true);
    expect(replayed.length, stdout).toBeGreaterThan(0);
    expect(replayed.every((l) => l.status === 200)).toBe(true);
    expect(logs.some((l) => l.event === 'credential_dead' || l.event === 'refresh_failed')).toBe(false);
    expect(stdout).toMatch(/demo: stopped\n$/);

    // No stray children: the proxy is gone, the stand-ins no longer listen, the temporary directory is removed.
    expect(alive(pid)).toBe(false);
    for (const url of standInUrls) await expect(fetch(url)).rejects.toThrow();
    expect(existsSync(configDir)).toBe(false);
  }, 40_000);
});
