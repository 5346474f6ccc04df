/**
 * Launches real redis-server processes for tests: standalone, Sentinel (1 master, 1 replica, 3 sentinels)
 * and a 3-master Cluster, each on free loopback ports with its own temp directory. Every process gets its
 * kill registered with the caller's cleanup the moment it is spawned, so a failed start-up leaks nothing;
 * a process exit hook is the second net. Only processes started here are ever signalled (the Redis on
 * 6379 that may be running on the box is never used or flushed).
 *
 * Readiness is polled with redis-cli, not with ioredis, so the launcher does not depend on the client
 * under test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';

const execFileAsync = promisify(execFile);
const HOST = '127.0.0.1';
const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

/** Receives a cleanup task; pass vitest's `onTestFinished`, or the function from `cleanupAfterAll()`. */
export type RegisterCleanup = (task: () => Promise<void> | void) => void;

/** A cleanup registry that runs, in reverse order, after all tests of the enclosing describe block. */
export function cleanupAfterAll(): RegisterCleanup {
  const tasks: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const task of tasks.reverse()) await task();
  });
  return (task) => {
    tasks.push(task);
  };
}

export interface RedisProcess {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  readonly pid: number | undefined;
  /** SIGKILL, resolved once the process has exited. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 2 s), resolved once the process has exited. */
  stop(): Promise<void>;
  /** SIGSTOP: the process keeps its sockets open but stops answering. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts the process again on the same port and directory (after kill or stop), waiting until it answers. */
  restart(): Promise<void>;
  /** Runs one command with redis-cli against this process; resolves to its raw output. */
  cli(...args: string[]): Promise<string>;
}

/** A port the kernel handed out for a moment; the server is closed again before the port is returned. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Runs redis-cli against a port; never against one this file did not start (callers pass their own ports). */
export async function redisCli(port: number, args: readonly string[], password?: string): Promise<string> {
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  const { stdout } = await execFileAsync(REDIS_CLI, ['-h', HOST, '-p', String(port), ...auth, ...args], { timeout: 5_000 });
  return stdout.trim();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

interface LaunchSpec {
  register: RegisterCleanup;
  port: number;
  /** Lines of the config file besides port, bind and dir. */
  config: string[];
  sentinel?: boolean;
  label: string;
  /** requirepass; redis-cli then authenticates with it. */
  password?: string;
}

/** Spawns one server process from a config file in its own temp dir; the caller waits for readiness. */
function launch(spec: LaunchSpec): RedisProcess {
  const dir = mkdtempSync(join(tmpdir(), `oauth-sidecar-${spec.label}-`));
  const configPath = join(dir, 'redis.conf');
  writeFileSync(
    configPath,
    [
      `port ${spec.port}`,
      `bind ${HOST}`,
      `dir ${dir}`,
      'save ""',
      'appendonly no',
      'protected-mode no',
      'loglevel warning',
      `logfile ${join(dir, 'redis.log')}`,
      ...(spec.password === undefined ? [] : [`requirepass ${spec.password}`]),
      ...spec.config,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };

  const start = (): void => {
    const args = spec.sentinel ? [configPath, '--sentinel'] : [configPath];
    const spawned = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    child = spawned;
    exited = new Promise((resolve) => spawned.once('exit', () => resolve()));
    spawned.once('exit', () => process.off('exit', killOnExit));
    process.on('exit', killOnExit);
  };
  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    // A paused process must run to act on SIGTERM; SIGKILL needs no SIGCONT, and must not get one: the
    // process would answer what it has buffered before it dies.
    if (signal !== 'SIGKILL') running.kill('SIGCONT');
    running.kill(signal);
    await exited;
  };
  const kill = () => signalAndWait('SIGKILL');

  start();
  spec.register(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const handle: RedisProcess = {
    host: HOST,
    port: spec.port,
    url: `redis://${HOST}:${spec.port}`,
    get pid() {
      return child?.pid;
    },
    kill,
    async stop() {
      const timer = setTimeout(() => child?.kill('SIGKILL'), 2_000);
      await signalAndWait('SIGTERM');
      clearTimeout(timer);
    },
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    async restart() {
      await kill();
      start();
      await waitUntilAnswering(handle);
    },
    cli: (...args) => redisCli(spec.port, args, spec.password),
  };
  return handle;
}

async function waitUntilAnswering(server: RedisProcess): Promise<void> {
  await waitFor(`redis on port ${server.port} to answer PING`, async () => (await server.cli('PING')).includes('PONG'));
}

export interface StartRedisOptions {
  /** Sets requirepass. */
  password?: string;
  /** More config lines. */
  config?: string[];
}

/** One standalone redis-server. */
export async function startRedis(register: RegisterCleanup, options: StartRedisOptions = {}): Promise<RedisProcess> {
  const server = launch({ register, port: await freePort(), config: options.config ?? [], label: 'redis', ...(options.password === undefined ? {} : { password: options.password }) });
  await waitUntilAnswering(server);
  return server;
}

export interface SentinelSetup {
  readonly name: string;
  readonly master: RedisProcess;
  readonly replica: RedisProcess;
  readonly sentinels: readonly RedisProcess[];
  /** For the store's `sentinels` option. */
  readonly sentinelAddresses: readonly { host: string; port: number }[];
  /** The master address the sentinels currently report. */
  currentMaster(): Promise<{ host: string; port: number }>;
}

/**
 * 1 master, 1 replica and 3 sentinels (quorum 2, down-after 1 s). Resolves once the replica is in sync
 * and every sentinel knows the master, the replica and the two other sentinels, so a failover can start.
 */
export async function startSentinelSetup(register: RegisterCleanup, name = 'mymaster'): Promise<SentinelSetup> {
  const master = launch({ register, port: await freePort(), config: [], label: 'master' });
  const replica = launch({ register, port: await freePort(), config: [`replicaof ${HOST} ${master.port}`], label: 'replica' });
  await Promise.all([waitUntilAnswering(master), waitUntilAnswering(replica)]);
  await waitFor('the replica to sync', async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));

  const sentinels: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(
      launch({
        register,
        port: await freePort(),
        sentinel: true,
        label: 'sentinel',
        config: [
          `sentinel monitor ${name} ${HOST} ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
        ],
      }),
    );
  }
  await Promise.all(sentinels.map(waitUntilAnswering));
  await waitFor(
    'sentinels to discover the replica and each other',
    async () => {
      for (const sentinel of sentinels) {
        const info = (await sentinel.cli('SENTINEL', 'MASTER', name)).split('\n');
        const field = (key: string) => info[info.indexOf(key) + 1];
        if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false;
      }
      return true;
    },
    20_000,
  );

  return {
    name,
    master,
    replica,
    sentinels,
    sentinelAddresses: sentinels.map((sentinel) => ({ host: sentinel.host, port: sentinel.port })),
    async currentMaster() {
      const [host, port] = (await sentinels[0]!.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).split('\n');
      return { host: host ?? '', port: Number(port) };
    },
  };
}

export interface ClusterSetup {
  readonly nodes: readonly RedisProcess[];
  /** For the store's `cluster` option. */
  readonly addresses: readonly { host: string; port: number }[];
}

/** A 3-master Cluster (no replicas), created with `redis-cli --cluster create`; resolves once every node reports cluster_state:ok. */
export async function startRedisCluster(register: RegisterCleanup): Promise<ClusterSetup> {
  const nodes: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(
      launch({
        register,
        port: await freePort(),
        label: 'cluster',
        // Without full coverage the slots of the other masters keep working when one master dies (no replicas here).
        config: ['cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000', 'cluster-require-full-coverage no', `cluster-port ${await freePort()}`],
      }),
    );
  }
  await Promise.all(nodes.map(waitUntilAnswering));
  await execFileAsync(REDIS_CLI, ['--cluster', 'create', ...nodes.map((node) => `${HOST}:${node.port}`), '--cluster-yes'], { timeout: 20_000 });
  await waitFor(
    'cluster_state:ok on every node',
    async () => {
      for (const node of nodes) {
        const info = await node.cli('CLUSTER', 'INFO');
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_known_nodes:3')) return false;
      }
      return true;
    },
    20_000,
  );
  return { nodes, addresses: nodes.map((node) => ({ host: node.host, port: node.port })) };
}
