/**
 * Proxy replicas as real OS processes (`oauth-sidecar serve`, which runs dist/), for the many-replica
 * Redis tests (test/integration/redis-processes*.test.ts): each replica can be SIGKILLed, frozen (SIGSTOP) and resumed like a crashed or
 * stalled pod. Every child is killed when the test that started it finishes (run-cli registers it).
 * Also a traffic generator that keeps a steady stream of requests going while a test breaks things.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { TokenStatus } from '../../src/tokens/token-status.js';
import { startCli, type RunningCli } from './run-cli.js';

export interface ProxyProcess {
  readonly name: string;
  /** e.g. http://127.0.0.1:40123, from the "started" log line. */
  readonly url: string;
  readonly adminUrl: string;
  readonly pid: number;
  readonly cli: RunningCli;
  /** SIGKILL, resolved once the process has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the process keeps its sockets but runs no code, like a long GC pause or a frozen VM. */
  pause(): void;
  resume(): void;
  status(upstream: string): Promise<TokenStatus>;
  readyz(): Promise<{ status: number; body: { ready: boolean; notReady?: Record<string, { state: string; reason?: string }> } }>;
  /** Parsed log lines with this `event` field so far. */
  events(event: string): Record<string, unknown>[];
}

/** Writes `yaml` as proxy.yaml in a temp dir removed when the test finishes; returns its path. */
export function writeProxyConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-replicas-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'proxy.yaml');
  writeFileSync(path, yaml);
  return path;
}

/** Starts `oauth-sidecar serve --config <configPath>` and waits (bounded) for its "started" line. */
export async function startProxyProcess(
  configPath: string,
  name: string,
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<ProxyProcess> {
  const cli = startCli(['serve', '--config', configPath], { env });
  const started = await cli.waitForLog((line) => line.event === 'started', timeoutMs);
  const pid = cli.child.pid ?? 0;
  const exited = cli.exited.then(() => undefined);
  return {
    name,
    url: String(started.proxy),
    adminUrl: String(started.admin),
    pid,
    cli,
    async kill() {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await exited;
    },
    pause: () => {
      cli.child.kill('SIGSTOP');
    },
    resume: () => {
      cli.child.kill('SIGCONT');
    },
    async status(upstream) {
      const body = (await (await fetch(`${String(started.admin)}/status`, { signal: AbortSignal.timeout(5_000) })).json()) as {
        upstreams: TokenStatus[];
      };
      const found = body.upstreams.find((status) => status.upstream === upstream);
      if (!found) throw new Error(`${name}: no status for ${upstream}`);
      return found;
    },
    async readyz() {
      const response = await fetch(`${String(started.admin)}/readyz`, { signal: AbortSignal.timeout(5_000) });
      return {
        status: response.status,
        body: (await response.json()) as { ready: boolean; notReady?: Record<string, { state: string; reason?: string }> },
      };
    },
    events: (event) => cli.logs().filter((line) => line.event === event),
  };
}

/** Starts `count` replicas of one config at once. */
export function startReplicas(configPath: string, count: number, env: Record<string, string> = {}): Promise<ProxyProcess[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startProxyProcess(configPath, `replica-${i}`, env)));
}

export interface TrafficResult {
  readonly ok: number;
  /** One entry per failed request: status code, or the error message when no response came. */
  readonly failures: string[];
  readonly maxLatencyMs: number;
}

export interface Traffic {
  /** Requests answered so far (any status). */
  done(): number;
  /** The failures so far (see TrafficResult.failures). */
  failures(): readonly string[];
  /** Stops the loops and resolves once every request in flight has finished. */
  stop(): Promise<TrafficResult>;
}

/**
 * `loops` concurrent request loops, each sending GET requests one after another to `urls` in turn, until
 * stopped. A request that takes longer than `requestTimeoutMs` counts as failed: nothing can hang the test.
 */
export function startTraffic(urls: readonly string[], loops: number, requestTimeoutMs = 5_000): Traffic {
  let running = true;
  let ok = 0;
  let answered = 0;
  let maxLatencyMs = 0;
  const failures: string[] = [];
  const loop = async (index: number): Promise<void> => {
    for (let i = index; running; i += loops) {
      const started = performance.now();
      try {
        const response = await fetch(`${urls[i % urls.length]}/t${i}`, { signal: AbortSignal.timeout(requestTimeoutMs) });
        await response.arrayBuffer();
        if (response.status === 200) ok++;
        else failures.push(`${response.status} from ${urls[i % urls.length]}`);
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
      answered++;
      maxLatencyMs = Math.max(maxLatencyMs, performance.now() - started);
    }
  };
  const all = Promise.all(Array.from({ length: loops }, (_, i) => loop(i)));
  return {
    done: () => answered,
    failures: () => [...failures],
    async stop() {
      running = false;
      await all;
      return { ok, failures, maxLatencyMs: Math.round(maxLatencyMs) };
    },
  };
}

/** Polls `check` every 50 ms until it returns true; throws after `timeoutMs`. Errors from `check` count as false. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      if (await check()) return Date.now() - started;
    } catch {
      // not there yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
