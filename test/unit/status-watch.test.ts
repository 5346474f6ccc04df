import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { StatusReport, StatusSource } from '../../src/cli/status.js';
import { watchStatus } from '../../src/cli/status-watch.js';

/** A source whose n-th read gives generation n, and whose reads listed in `failing` throw. */
function countingSource(failing: readonly number[] = []): StatusSource & { reads: number } {
  const source = {
    reads: 0,
    read(): Promise<StatusReport> {
      source.reads += 1;
      if (failing.includes(source.reads)) return Promise.reject(new Error('no proxy answered at http://127.0.0.1:9/status'));
      return Promise.resolve({ source: 'test', upstreams: [{ upstream: 'apiax', state: 'ok', generation: source.reads }] });
    },
    close: () => Promise.resolve(),
  };
  return source;
}

/** Runs the watch until `frames` frames were read, then interrupts it the way Ctrl-C does. */
async function watch(options: { tty: boolean; json: boolean; frames: number; failing?: number[]; columns?: number }): Promise<string> {
  const out = Object.assign(new PassThrough(), { isTTY: options.tty, columns: options.columns });
  let text = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const source = countingSource(options.failing);
  const interrupted = new AbortController();
  const done = watchStatus(source, { json: options.json, out, signal: interrupted.signal, intervalMs: 10 });
  while (source.reads < options.frames) await new Promise((resolve) => setTimeout(resolve, 5));
  interrupted.abort();
  await done;
  return text;
}

describe('status --watch', () => {
  it('redraws in place on a terminal, and gives the cursor back when interrupted', async () => {
    const text = await watch({ tty: true, json: false, frames: 3 });
    expect(text.startsWith('\x1b[?25l\x1b[2J')).toBe(true);
    const frames = text.split('\x1b[H').slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames[0]).toMatch(/apiax\s+ok\s+1/);
    expect(frames[1]).toMatch(/apiax\s+ok\s+2/);
    expect(text.endsWith('\x1b[?25h')).toBe(true);
  });

  it('cuts lines to the terminal width, so a frame never wraps and scrolls', async () => {
    const text = await watch({ tty: true, json: false, frames: 2, columns: 30 });
    // eslint-disable-next-line no-control-regex -- removing the escapes to measure what is visible
    const visible = text.replace(/\x1b\[[?0-9]*[a-zA-Z]/g, '').split('\n');
    expect(visible.length).toBeGreaterThan(4);
    for (const line of visible) expect(line.length).toBeLessThanOrEqual(30);
    expect(visible).toContain('UPSTREAM  STATE  GEN  EXPIRES IN'.slice(0, 30));
  });

  it('appends plain frames into a pipe, and keeps going when the proxy does not answer', async () => {
    const text = await watch({ tty: false, json: false, frames: 4, failing: [2] });
    expect(text).not.toContain('\x1b');
    const frames = text.split('\n\n').filter(Boolean);
    expect(frames[0]).toMatch(/apiax\s+ok\s+1/);
    expect(frames[1]).toContain('error: no proxy answered at http://127.0.0.1:9/status; asking again');
    expect(frames[2]).toMatch(/apiax\s+ok\s+3/);
  });

  it('with --json, one JSON object per line: a report or an error, each with its time', async () => {
    const text = await watch({ tty: true, json: true, frames: 3, failing: [2] });
    expect(text).not.toContain('\x1b');
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { at: string; upstreams?: { generation: number }[]; error?: string });
    expect(lines[0]?.upstreams?.[0]?.generation).toBe(1);
    expect(lines[1]?.error).toContain('no proxy answered');
    expect(lines[2]?.upstreams?.[0]?.generation).toBe(3);
    for (const line of lines) expect(Number.isNaN(Date.parse(line.at))).toBe(false);
  });
});
