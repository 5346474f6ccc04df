/**
 * A child's resident memory, from /proc/<pid>/status (Linux only): VmRSS (now) and VmHWM (the peak).
 * resetPeak writes "5" to /proc/<pid>/clear_refs, which sets VmHWM back to the current RSS, so a
 * following peak belongs to the load that ran after it and not to anything earlier in the child's life.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const KIB_PER_MIB = 1024;

/** @returns {{ rssMiB: number, peakMiB: number } | null} null where /proc is not readable (not Linux, process gone). */
export function readMemory(pid) {
  let status;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'))?.[1] ?? NaN);
  const rss = kib('VmRSS');
  const peak = kib('VmHWM');
  if (!Number.isFinite(rss) || !Number.isFinite(peak)) return null;
  return { rssMiB: rss / KIB_PER_MIB, peakMiB: peak / KIB_PER_MIB };
}

/** True when the kernel took the reset (Linux >= 4.0, same user); false leaves VmHWM as the lifetime peak. */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
