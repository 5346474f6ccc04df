/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) into self time per function, for the
 * `--profile` report. A profile is a call tree of nodes (each with a callFrame) plus a sample list:
 * samples[i] is the node that was on top of the stack, timeDeltas[i] the microseconds since the
 * previous sample. Like Chrome DevTools, each sample is charged the time until the next one.
 * Sample times are on the machine's monotonic clock (the one process.hrtime reads, in any process),
 * so the orchestrator can keep only the samples taken while its load ran.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** V8's pseudo-frames: not functions, but worth reporting (GC share, idle share). */
const IDLE = '(idle)';
const PSEUDO_FRAMES = new Set(['(root)', '(program)', '(garbage collector)', IDLE]);

/** file:///…/repo/dist/x.js → dist/x.js; node:internal/… stays as it is. */
function shortUrl(url) {
  if (!url) return '';
  const plain = url.startsWith('file://') ? fileURLToPath(url) : url;
  return plain.startsWith(repoRoot) ? plain.slice(repoRoot.length) : plain;
}

/** Where a function lives, coarsely: the sidecar's own code, a dependency, Node itself, or V8. */
function areaOf(url, name) {
  if (!url) return PSEUDO_FRAMES.has(name) ? name : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  // The only WebAssembly in the sidecar is undici's HTTP parser.
  if (url.startsWith('wasm://')) return 'undici (llhttp wasm)';
  const short = shortUrl(url);
  const dependency = short.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (dependency) return dependency[1];
  if (short.startsWith('dist/')) return 'oauth-sidecar (dist/)';
  return short;
}

/**
 * `window` ({ fromUs, toUs }, monotonic microseconds) keeps only the samples taken inside it; without
 * one, or when it does not overlap the profile, every sample counts (`windowed` says which).
 * @returns {{ windowed: boolean, totalMs: number, idleMs: number, busyMs: number, functions: { name: string, location: string, area: string, selfMs: number }[], areas: { area: string, selfMs: number }[] }}
 * Both lists sorted by self time, largest first; (idle) is left out of them.
 */
export function summarizeCpuProfile(file, window = undefined) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const { samples = [], timeDeltas = [], startTime = 0, endTime = 0 } = profile;
  const windowed = window !== undefined && window.fromUs < endTime && window.toUs > startTime;
  const selfUs = new Map();
  let at = startTime;
  for (let i = 0; i < samples.length; i += 1) {
    at += timeDeltas[i] ?? 0;
    if (windowed && (at < window.fromUs || at > window.toUs)) continue;
    // The last sample has no successor: charge it the previous interval.
    const us = timeDeltas[i + 1] ?? timeDeltas[i] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, us));
  }

  const functions = new Map();
  const areas = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber, columnNumber } = nodes.get(id).callFrame;
    const name = functionName || '(anonymous)';
    totalUs += us;
    if (name === IDLE) {
      idleUs += us;
      continue;
    }
    // One function = name + script + position (call frames are 0-based; editors count lines from 1).
    const location = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name}\0${url}\0${lineNumber}\0${columnNumber}`;
    const entry = functions.get(key) ?? { name, location, area: areaOf(url, name), selfMs: 0 };
    entry.selfMs += us / 1000;
    functions.set(key, entry);
    areas.set(entry.area, (areas.get(entry.area) ?? 0) + us / 1000);
  }
  const bySelf = (a, b) => b.selfMs - a.selfMs;
  return {
    windowed,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    functions: [...functions.values()].sort(bySelf),
    areas: [...areas].map(([area, selfMs]) => ({ area, selfMs })).sort(bySelf),
  };
}
