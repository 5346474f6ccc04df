/**
 * `oauth-sidecar status --watch`: the status again every second until interrupted. On a terminal the
 * table is redrawn in place; into a pipe each frame is appended (a table, or one JSON line with --json),
 * so `status --watch --json | jq` works. A proxy that stops answering shows as an error frame and is
 * asked again on the next tick, rather than ending the watch.
 */
import type { StatusReport, StatusSource } from './status.js';
import { formatStatusTable } from './status-table.js';

export interface WatchOptions {
  readonly json: boolean;
  readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly signal: AbortSignal;
  readonly intervalMs?: number;
}

const HOME = '\x1b[H';
const CLEAR_SCREEN = '\x1b[2J';
const CLEAR_TO_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

export async function watchStatus(source: StatusSource, options: WatchOptions): Promise<void> {
  const intervalMs = options.intervalMs ?? 1000;
  const terminal = Boolean(options.out.isTTY) && !options.json;
  if (terminal) options.out.write(HIDE_CURSOR + CLEAR_SCREEN);
  try {
    while (!options.signal.aborted) {
      const started = Date.now();
      const report = await source.read().then(
        (value): StatusReport | Error => value,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
      if (options.signal.aborted) break;
      options.out.write(frame(report, new Date(started), options.json, terminal ? (options.out.columns ?? 0) : undefined, intervalMs));
      await sleep(Math.max(0, intervalMs - (Date.now() - started)), options.signal);
    }
  } finally {
    if (terminal) options.out.write(SHOW_CURSOR);
  }
}

/** `columns`: the terminal's width (0 when unknown), or undefined when not writing to a terminal. */
function frame(report: StatusReport | Error, askedAt: Date, json: boolean, columns: number | undefined, intervalMs: number): string {
  // When it was asked, not when the answer came: frames stay a steady interval apart however slow a read is.
  const at = askedAt.toISOString();
  if (json) return `${JSON.stringify(report instanceof Error ? { at, error: report.message } : { at, ...report })}\n`;
  const title = `oauth-sidecar status at ${at}, every ${intervalMs / 1000} s (Ctrl-C to stop)`;
  const body = report instanceof Error ? `error: ${report.message}; asking again` : formatStatusTable(report);
  if (columns === undefined) return `${title}\n${body}\n\n`;
  // A line wider than the terminal would wrap and push the next frame down instead of over this one.
  const lines = `${title}\n${body}`.split('\n').map((line) => (columns > 0 ? line.slice(0, columns) : line));
  return `${HOME}${lines.map((line) => `${line}${CLEAR_TO_LINE_END}\n`).join('')}${CLEAR_BELOW}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
