/**
 * What this machine offers the bench: binaries on PATH (wrk, nginx, taskset) and whether CPU
 * pinning works. Pinning matters on a 2-core box: without it the proxy under test, the upstream and
 * the load generator fight over both cores and the numbers say more about the scheduler than the proxy.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';

/** Absolute path of an executable found on PATH (plus `extraDirs`), or null. */
export function which(name, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** nginx often lives in /usr/sbin, which is not on every user's PATH. */
export function findNginx() {
  return which('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']);
}

/** CPU roles: the measured proxy gets core 0 alone; load generator, upstream and this orchestrator share core 1. */
export const PROXY_CPU = 0;
export const LOAD_CPU = 1;

/**
 * @returns {{ enabled: boolean, reason: string, taskset: string | null }}
 */
export function detectPinning() {
  if (process.platform !== 'linux') return { enabled: false, reason: 'not Linux', taskset: null };
  const cpus = availableParallelism();
  if (cpus < 2) return { enabled: false, reason: `only ${cpus} CPU available`, taskset: null };
  const taskset = which('taskset', ['/usr/bin', '/bin']);
  if (!taskset) return { enabled: false, reason: 'taskset not found', taskset: null };
  try {
    // Both cores must be in our allowed set (a container cpuset may exclude one).
    execFileSync(taskset, ['-c', String(PROXY_CPU), 'true'], { stdio: 'ignore' });
    execFileSync(taskset, ['-c', String(LOAD_CPU), 'true'], { stdio: 'ignore' });
  } catch {
    return { enabled: false, reason: `taskset cannot use cores ${PROXY_CPU} and ${LOAD_CPU}`, taskset: null };
  }
  return { enabled: true, reason: `proxy on core ${PROXY_CPU}; load generator + upstream on core ${LOAD_CPU}`, taskset };
}

/**
 * Wraps a command so it runs on one core (taskset execs it: same pid, same stdio, same env).
 * @returns {[string, string[]]}
 */
export function pinned(pinning, cpu, command, args) {
  if (!pinning.enabled) return [command, args];
  return [pinning.taskset, ['-c', String(cpu), command, ...args]];
}

/** Moves this orchestrator onto the load core so it never steals time from the proxy under test. */
export function pinSelf(pinning, cpu) {
  if (!pinning.enabled) return;
  try {
    execFileSync(pinning.taskset, ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  } catch {
    // Not fatal: the orchestrator is idle while measuring.
  }
}
