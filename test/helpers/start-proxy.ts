/**
 * Starts the real proxy (createApp) on port 0 with a config written as YAML, capturing every log line
 * in memory so tests can assert on logs (and on the absence of secrets in them). Cleanup is registered
 * with the running test right away.
 */
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { TokenStore } from '../../src/store/token-store.js';

export interface RunningProxy {
  readonly app: App;
  /** e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly adminUrl: string;
  /** Every log line so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Every log line so far, raw text (for leak checks). */
  rawLogs(): string;
  stop(): Promise<void>;
}

export interface StartProxyOptions {
  /** Extra environment for ${VAR} interpolation. */
  env?: NodeJS.ProcessEnv;
  store?: TokenStore;
  /** Keep running after the test (the test stops it itself). */
  manualStop?: boolean;
  owner?: string;
}

/**
 * `upstreamsYaml` is the `upstreams:` block body; listen/admin are set to port 0 and the store to memory
 * unless `headerYaml` overrides them.
 */
export async function startProxy(yaml: string, options: StartProxyOptions = {}): Promise<RunningProxy> {
  const config = parseConfig(yaml, { env: { ...process.env, ...options.env } });
  const { logger, lines } = capturingLogger();
  const app = createApp(config, {
    logger,
    ...(options.store ? { store: options.store } : {}),
    ...(options.owner ? { owner: options.owner } : {}),
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.stop();
  };
  if (!options.manualStop) onTestFinished(stop);
  const { proxyUrl, adminUrl } = await app.start();
  return {
    app,
    url: proxyUrl,
    adminUrl: adminUrl ?? '',
    get logs() {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    rawLogs: () => lines.join('\n'),
    stop,
  };
}

/** A debug-level logger whose lines are kept in memory, for tests that read the log. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

/** A minimal config around one upstream block, on ephemeral ports with the memory store. */
export function configYaml(upstreams: string, top = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\n'): string {
  return `${top}upstreams:\n${indent(upstreams, 2)}\n`;
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line.trim() ? pad + line : line))
    .join('\n');
}

/** Polls until `check` returns true (bounded), for state that changes in the background. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
