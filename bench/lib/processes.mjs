/**
 * Every child process the bench starts goes through here, so one place can stop them all: at the
 * normal end, on errors, on SIGINT/SIGTERM and when the watchdog fires.
 *
 * Each child is spawned `detached`, i.e. as the leader of its own process group. Two reasons:
 * killing the group (-pid) also takes its descendants (nginx's worker, anything a child forks),
 * and a Ctrl-C in the terminal reaches only this orchestrator, which then stops the children
 * itself instead of racing them.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, exited: boolean, exitCode: number | null, signal: string | null, error?: Error, done: Promise<void> }} ChildRecord */

/** @type {Set<ChildRecord>} */
const children = new Set();
/** Temp dirs removed on exit (configs, nginx pid/error log). */
const tempDirs = new Set();
/** Set once a signal or crash began the shutdown: no new children may start after that. */
let stopping = false;

export function isStopping() {
  return stopping;
}

/**
 * Spawns `command args` in its own process group and tracks it until it is stopped.
 * @returns {ChildRecord}
 */
export function startChild(name, command, args, options = {}) {
  if (stopping) throw new Error(`not starting ${name}: the bench is stopping`);
  const child = spawn(command, args, { ...options, detached: true });
  /** @type {ChildRecord} */
  const record = { name, child, exited: false, exitCode: null, signal: null, done: Promise.resolve() };
  record.done = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      record.exited = true;
      record.exitCode = code;
      record.signal = signal;
      resolve();
    });
    // spawn failures (ENOENT…) emit 'error' and no 'exit'.
    child.once('error', (error) => {
      record.exited = true;
      record.error = error;
      resolve();
    });
  });
  children.add(record);
  return record;
}

function killGroup(record, signal) {
  if (record.child.pid === undefined) return;
  try {
    process.kill(-record.child.pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

/** SIGTERM the child's group, then SIGKILL it if it has not exited after `graceMs`. */
export async function stopChild(record, graceMs = 3000) {
  if (!children.has(record)) return;
  killGroup(record, 'SIGTERM');
  const exitedInTime = await Promise.race([record.done.then(() => true), sleep(graceMs).then(() => false)]);
  // Even when the leader exited, a descendant may still hold the group: SIGKILL is a no-op otherwise.
  killGroup(record, 'SIGKILL');
  if (!exitedInTime) await Promise.race([record.done, sleep(1000)]);
  children.delete(record);
}

export async function stopAll(graceMs = 3000) {
  await Promise.all([...children].map((record) => stopChild(record, graceMs)));
}

/** Last resort, synchronous (usable from the 'exit' event): SIGKILL every group still tracked. */
export function killAllNow() {
  for (const record of children) killGroup(record, 'SIGKILL');
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function removeOnExit(dir) {
  tempDirs.add(dir);
}

/** Stops every child (brief grace), then exits with `code`. Used by signals, crashes and the watchdog. */
export function abort(code) {
  stopping = true;
  stopAll(1500).finally(() => process.exit(code));
}

/**
 * SIGINT/SIGTERM/SIGHUP and crashes stop the children before exiting; the 'exit' hook catches any
 * path that skipped that (process.exit from elsewhere). A second Ctrl-C kills at once.
 */
export function installCleanupHandlers() {
  const onSignal = (signal) => {
    if (stopping) {
      killAllNow();
      process.exit(130);
    }
    console.error(`\nbench: ${signal} received, stopping child processes…`);
    abort(130);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal);
  const onCrash = (error) => {
    console.error('bench: failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    abort(1);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  process.on('exit', killAllNow);
}
