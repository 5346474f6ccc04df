/**
 * Launches real redis-server processes for tests: standalone, Sentinel (1 master, 1 replica, 3 sentinels)
 * and a 3-master Cluster, each on its own loopback port and temp directory. Every process gets its kill
 * registered with the caller's cleanup the moment it is spawned, so a failed start-up leaks nothing; a
 * process exit hook is the second net. Only processes started here are ever signalled (the Redis on 6379
 * that may be running on the box is never used or flushed).
 *
 * redis-server must be told its port up front, so each start takes a candidate port (see ports.ts) and
 * starts again on another one when the server exits with "Address already in use". It is ready when the
 * port answers with this process's own pid (INFO server), so a server of someone else's that holds the
 * port is never mistaken for ours. Readiness is polled with redis-cli, not with ioredis, so the launcher
 * does not depend on the client under test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { ADDRESS_IN_USE, retryOnAddressInUse } from './ports.js';
import { redisCliPath, redisServerPath } from './redis-executables.js';

const execFileAsync = promisify(execFile);
const HOST = '127.0.0.1';
/** A Cluster node's bus port is its port + 10000 (redis.conf `cluster-port` 0). */
const CLUSTER_BUS_OFFSET = 10_000;

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

/** Runs redis-cli against a port; never against one this file did not start (callers pass their own ports). */
export async function redisCli(port: number, args: readonly string[], password?: string): Promise<string> {
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  const { stdout } = await execFileAsync(redisCliPath(), ['-h', HOST, '-p', String(port), ...auth, ...args], { timeout: 5_000 });
  return stdout.trim();
}

/** Polls `check` until it is true; `fatal` returning an error (the process died) ends the wait with it. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  fatal: () => Error | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not answering yet
    }
    const error = fatal();
    if (error) throw error;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

interface LaunchSpec {
  register: RegisterCleanup;
  /** Lines of the config file besides port, bind and dir. */
  config: string[];
  sentinel?: boolean;
  label: string;
  /** requirepass; redis-cli then authenticates with it. */
  password?: string;
  /** Ports above the candidate that the server binds too (a Cluster node's bus port). */
  portSpan?: number;
}

/** Why a server process that exited during start-up did so, from its log. */
function exitReason(logPath: string): string {
  try {
    return readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts one server process from a config file in its own temp dir, on a candidate port (another one when
 * that port is taken), and resolves once it answers.
 */
async function launch(spec: LaunchSpec): Promise<RedisProcess> {
  const serverPath = redisServerPath();
  redisCliPath(); // readiness is polled with redis-cli: fail now, not after the start-up timeout
  const dir = mkdtempSync(join(tmpdir(), `oauth-sidecar-${spec.label}-`));
  const configPath = join(dir, 'redis.conf');
  const logPath = join(dir, 'redis.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
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
  spec.register(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Spawns the server on `port` and waits until it answers; ADDRESS_IN_USE when the port was taken. */
  const start = async (port: number): Promise<void | typeof ADDRESS_IN_USE> => {
    rmSync(logPath, { force: true });
    const spawned = spawn(serverPath, spec.sentinel ? [configPath, '--sentinel'] : [configPath], { stdio: 'ignore' });
    child = spawned;
    let gone: Error | undefined;
    exited = new Promise((resolve) => spawned.once('exit', () => resolve()));
    spawned.once('error', (error) => (gone = error));
    spawned.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      gone ??= new Error(
        `redis-server (${spec.label}) on port ${port} exited during start-up (${code ?? signal}):\n${exitReason(logPath)}`,
      );
    });
    process.on('exit', killOnExit);
    // Its own pid in INFO: a server of someone else's on this port never passes for ours.
    await waitFor(
      `redis-server (${spec.label}) on port ${port} to answer`,
      async () => new RegExp(`^process_id:${spawned.pid}\\s*$`, 'm').test(await redisCli(port, ['INFO', 'server'], spec.password)),
      15_000,
      () => gone,
    );
    return undefined;
  };
  const startOrInUse = async (port: number): Promise<void | typeof ADDRESS_IN_USE> => {
    try {
      return await start(port);
    } catch (error) {
      if (exitReason(logPath).includes('Address already in use')) return ADDRESS_IN_USE;
      throw error;
    }
  };

  const port = await retryOnAddressInUse(
    `redis-server (${spec.label})`,
    async (candidate) => {
      writeFileSync(
        configPath,
        [
          `port ${candidate}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          'save ""',
          'appendonly no',
          'protected-mode no',
          'loglevel warning',
          `logfile ${logPath}`,
          ...(spec.password === undefined ? [] : [`requirepass ${spec.password}`]),
          ...spec.config,
          '',
        ].join('\n'),
      );
      return (await startOrInUse(candidate)) === ADDRESS_IN_USE ? ADDRESS_IN_USE : candidate;
    },
    10,
    spec.portSpan ?? 0,
  );

  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
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
      // Same port and config (the server may have rewritten it, e.g. a Sentinel's view); taken meanwhile, it fails.
      await start(port);
    },
    cli: (...args) => redisCli(port, args, spec.password),
  };
}

export interface StartRedisOptions {
  /** Sets requirepass. */
  password?: string;
  /** More config lines. */
  config?: string[];
}

/** One standalone redis-server. */
export async function startRedis(register: RegisterCleanup, options: StartRedisOptions = {}): Promise<RedisProcess> {
  return launch({
    register,
    config: options.config ?? [],
    label: 'redis',
    ...(options.password === undefined ? {} : { password: options.password }),
  });
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
  const master = await launch({ register, config: [], label: 'master' });
  const replica = await launch({ register, config: [`replicaof ${HOST} ${master.port}`], label: 'replica' });
  await waitFor('the replica to sync', async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));

  const sentinels = await Promise.all(
    [1, 2, 3].map(() =>
      launch({
        register,
        sentinel: true,
        label: 'sentinel',
        config: [
          `sentinel monitor ${name} ${HOST} ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
        ],
      }),
    ),
  );
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
  const nodes = await Promise.all(
    [1, 2, 3].map(() =>
      launch({
        register,
        label: 'cluster',
        portSpan: CLUSTER_BUS_OFFSET,
        // Without full coverage the slots of the other masters keep working when one master dies (no replicas here).
        // The bus port is the default, port + 10000: it stays below the ephemeral range with the port (see portSpan).
        config: ['cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000', 'cluster-require-full-coverage no'],
      }),
    ),
  );
  await execFileAsync(redisCliPath(), ['--cluster', 'create', ...nodes.map((node) => `${HOST}:${node.port}`), '--cluster-yes'], {
    timeout: 20_000,
  });
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
