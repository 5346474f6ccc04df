/**
 * A real forward (egress) proxy in a child process (test/helpers/forward-proxy-process.mjs, built on the
 * `proxy` package), with optional Basic proxy authentication, that counts what went through it: CONNECT
 * tunnels per target, absolute-form requests, 407 refusals, and whether Proxy-Authorization was ever sent.
 * It serves loopback targets only.
 *
 * Cleanup: started inside a test, it is stopped when that test finishes; from a hook, call stop() in afterAll
 * (or return it from beforeAll). Whatever is still running is killed when the test process exits, and the
 * child exits by itself when its parent dies (its IPC channel closes), so there are no orphans.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export interface ForwardProxy {
  /** http://127.0.0.1:port, never with credentials. */
  readonly url: string;
  readonly port: number;
  /** The child's process id (for tests that check it is gone). */
  readonly pid: number;
  /** Accepted CONNECT requests (after authentication) per target 'host:port', as the client wrote it. */
  tunnels(): Promise<Record<string, number>>;
  /** Accepted absolute-form (non-CONNECT) requests. */
  plainRequests(): Promise<number>;
  /** 407 answers: requests without the right Proxy-Authorization. */
  authRefusals(): Promise<number>;
  /** Whether any request so far carried a Proxy-Authorization header (its value is never kept). */
  lastProxyAuthorizationSeen(): Promise<boolean>;
  /** Kills the child (SIGKILL) and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

interface ProxyStats {
  readonly tunnels: Record<string, number>;
  readonly plainRequests: number;
  readonly authRefusals: number;
  readonly proxyAuthorizationSeen: boolean;
}

type ChildMessage = { type: 'listening'; port: number } | { type: 'stats'; id: number; stats: ProxyStats };

const processFile = fileURLToPath(new URL('./forward-proxy-process.mjs', import.meta.url));
const STARTUP_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 5_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Starts the proxy; with a username it demands Basic proxy authentication with that username and password. */
export async function startForwardProxy(options: { username?: string; password?: string } = {}): Promise<ForwardProxy> {
  // Credentials travel in the child's environment, never its argv (which `ps` shows).
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (options.username !== undefined) {
    env.FORWARD_PROXY_USERNAME = options.username;
    env.FORWARD_PROXY_PASSWORD = options.password ?? '';
  }
  // execArgv: [] so the child does not inherit the test runner's loaders and flags.
  const child = fork(processFile, [], { env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    running.delete(child);
  };
  try {
    onTestFinished(stop);
  } catch {
    // Not inside a test: the caller stops it (afterAll), or the exit hook kills it.
  }

  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let port: number;
  try {
    port = await waitForListening(child, () => stderr);
  } catch (error) {
    await stop();
    throw error;
  }

  let nextId = 0;
  const stats = () =>
    new Promise<ProxyStats>((resolve, reject) => {
      if (!child.connected) return reject(new Error('forward proxy: the child exited (stopped?)'));
      const id = ++nextId;
      const timer = setTimeout(
        () => done(new Error(`forward proxy: no answer to a stats query within ${QUERY_TIMEOUT_MS} ms`)),
        QUERY_TIMEOUT_MS,
      );
      const onMessage = (message: ChildMessage) => {
        if (message.type === 'stats' && message.id === id) done(undefined, message.stats);
      };
      const onExit = () => done(new Error('forward proxy: the child exited'));
      const done = (error?: Error, answer?: ProxyStats) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (answer) resolve(answer);
        else reject(error ?? new Error('forward proxy: no stats'));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ type: 'stats', id });
    });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    tunnels: async () => ({ ...(await stats()).tunnels }),
    plainRequests: async () => (await stats()).plainRequests,
    authRefusals: async () => (await stats()).authRefusals,
    lastProxyAuthorizationSeen: async () => (await stats()).proxyAuthorizationSeen,
    stop,
  };
}

function track(child: ChildProcess): void {
  running.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const left of running) left.kill('SIGKILL');
  });
}

function waitForListening(child: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not report listening within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
    const onMessage = (message: ChildMessage) => {
      if (message.type !== 'listening') return;
      cleanup();
      resolve(message.port);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited (${signal ?? code}) before listening`);
    const onError = (error: Error) => fail(`could not start: ${error.message}`);
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`forward proxy ${why}${stderr() ? `; stderr: ${stderr().trim()}` : ''}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}
