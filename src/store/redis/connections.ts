/**
 * The store's two Redis connections, tuned for faults (a Redis that dies, freezes or fails over), and the deadline every command runs under.
 *
 * ioredis 6.0.0 defaults take 73 s to fail a command while Redis is down (reconnect backoff up to 5 s, 20
 * retries per request), wait forever on a Redis that stops answering, and re-send commands whose reply was
 * lost, so a script could run twice. Here instead:
 *   - commandTimeout: one command fails after `commandTimeoutMs` (500 ms) even if Redis is frozen;
 *   - enableOfflineQueue false: while disconnected a command fails at once instead of queueing without bound;
 *   - maxRetriesPerRequest 1 and autoResendUnfulfilledCommands false: a command in flight when the connection
 *     drops fails on the next reconnect attempt and is never re-sent behind our back (the caller retries,
 *     and every script is idempotent). With resend off, 6.0.0 can leave such a promise pending forever
 *     (github.com/redis/ioredis/issues/2193), so `withDeadline` puts a second, independent bound on every operation;
 *   - retryStrategy capped at 1 s, so Redis coming back is noticed within a second;
 *   - keepAlive and a bounded connectTimeout; lazyConnect, so create() connects explicitly and fails clearly.
 * The commands (lock, commit, read) have their own connection; pub/sub has another (ChangeSubscriber).
 */
import { formatHostPort } from '../../net/endpoint.js';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SidecarError, StoreError } from '../../errors.js';
import type { RedisAddress, RedisStoreEventListener, ResolvedRedisStoreOptions } from './options.js';

export type CommandClient = Redis | Cluster;

export const RECONNECT_DELAY_CAP_MS = 1_000;
const KEEP_ALIVE_INITIAL_DELAY_MS = 5_000;

export const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, RECONNECT_DELAY_CAP_MS);

/** Where the store points, for descriptions and error messages; never holds a password. */
export function describeTopology(options: ResolvedRedisStoreOptions): string {
  const { topology } = options;
  switch (topology.kind) {
    case 'standalone':
      return `${topology.tls ? 'rediss' : 'redis'} ${formatHostPort(topology.address)}/${topology.db}`;
    case 'sentinel':
      return `redis sentinel master "${topology.name}" via ${topology.sentinels.map(formatHostPort).join(',')}`;
    case 'cluster':
      return `redis cluster ${topology.nodes.map(formatHostPort).join(',')}`;
  }
}

/** Options shared by every connection to a data node. */
function nodeOptions(options: ResolvedRedisStoreOptions): RedisOptions {
  const timeout = options.commandTimeoutMs;
  return {
    lazyConnect: true,
    commandTimeout: timeout,
    connectTimeout: Math.max(2 * timeout, 1_000),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
    keepAlive: KEEP_ALIVE_INITIAL_DELAY_MS,
    enableAutoPipelining: false,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
  };
}

/**
 * Options for one plain connection (standalone or via Sentinel). `connectionName` shows up in CLIENT LIST.
 * `retryStrategy` may be overridden (the subscriber replaces its connection instead of reconnecting it).
 */
export function redisOptions(
  options: ResolvedRedisStoreOptions,
  connectionName: string,
  overrides: Partial<RedisOptions> = {},
): RedisOptions {
  const { topology } = options;
  const common = { ...nodeOptions(options), connectionName, ...overrides };
  switch (topology.kind) {
    case 'standalone':
      return { ...common, host: topology.address.host, port: topology.address.port, db: topology.db, ...(topology.tls ? { tls: {} } : {}) };
    case 'sentinel':
      return {
        ...common,
        sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
        name: topology.name,
        // After 3 rounds over all sentinels the attempt fails and retryStrategy schedules the next one.
        sentinelRetryStrategy: (attempt: number) => (attempt > 3 ? null : reconnectDelay(attempt)),
        sentinelCommandTimeout: options.commandTimeoutMs,
        failoverDetector: false,
      };
    case 'cluster':
      throw new SidecarError('INTERNAL', 'a cluster node connection is created with clusterNodeOptions');
  }
}

/** Options for a plain connection to one Cluster node (the subscriber). */
export function clusterNodeOptions(options: ResolvedRedisStoreOptions, address: RedisAddress, connectionName: string): RedisOptions {
  return { ...nodeOptions(options), connectionName, host: address.host, port: address.port };
}

export function createCommandClient(options: ResolvedRedisStoreOptions): CommandClient {
  const { topology } = options;
  if (topology.kind !== 'cluster') return new Redis(redisOptions(options, 'oauth-sidecar:commands'));
  const { lazyConnect: _lazy, enableOfflineQueue: _queue, retryStrategy: _retry, ...perNode } = nodeOptions(options);
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: Math.max(2 * options.commandTimeoutMs, 1_000),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    redisOptions: { ...perNode, connectionName: 'oauth-sidecar:commands' },
  };
  return new Cluster(
    topology.nodes.map(({ host, port }) => ({ host, port })),
    clusterOptions,
  );
}

export type ConnectionErrorReporter = (connection: 'commands' | 'subscriber', endpoint: string, reason: string) => void;

/**
 * Passes connection errors on as 'connection-error' events, each endpoint and reason at most once per
 * interval: ioredis reports every reconnect attempt, up to ten a second.
 */
export function throttledConnectionErrors(onEvent: RedisStoreEventListener, intervalMs = 5_000): ConnectionErrorReporter {
  const lastReported = new Map<string, number>();
  return (connection, endpoint, reason) => {
    const id = `${connection} ${endpoint} ${reason}`;
    const now = Date.now();
    if (now - (lastReported.get(id) ?? -Infinity) < intervalMs) return;
    if (lastReported.size > 100) lastReported.clear();
    lastReported.set(id, now);
    onEvent('connection-error', { connection, endpoint, reason });
  };
}

/** Reports connection loss and recovery of the command connection through onEvent. */
export function watchCommandClient(
  client: CommandClient,
  endpoint: string,
  onEvent: RedisStoreEventListener,
  reportError: ConnectionErrorReporter,
): void {
  let ready = false;
  client.on('error', (error: Error) => reportError('commands', endpoint, error.message));
  client.on('node error', (error: Error, node: string) => reportError('commands', node, error.message));
  client.on('ready', () => {
    if (ready) return;
    ready = true;
    onEvent('reconnected', { connection: 'commands', endpoint });
  });
  client.on('close', () => {
    if (!ready) return;
    ready = false;
    onEvent('disconnected', { connection: 'commands', endpoint });
  });
}

/**
 * Resolves or rejects like `promise`, but rejects after `ms` at the latest: the second
 * net under ioredis's own commandTimeout (see ioredis#2193 above).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    // Retryable: a reply that did not come in time may come next time (StoreError keeps its message in reasonOf).
    timer = setTimeout(() => reject(new StoreError(`no reply within ${ms} ms`, { retryable: true })), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The message of a client error, or a description of it; ioredis errors carry the command's arguments, never pass them on. */
export function reasonOf(error: unknown): string {
  if (error instanceof StoreError) return error.message;
  if (error instanceof Error) {
    if (error.message.startsWith("Stream isn't writeable")) return 'not connected (reconnecting)';
    if (error.name === 'MaxRetriesPerRequestError') return 'connection lost before the reply came';
    return error.message;
  }
  return String(error);
}

/** Closes a client gracefully (QUIT after replies to commands in flight), or forcibly after `ms`. */
export async function closeClient(client: CommandClient, ms: number): Promise<void> {
  try {
    if (client.status === 'ready') await withDeadline(client.quit(), ms);
  } catch {
    // Not answering: drop the connection below.
  } finally {
    client.disconnect();
  }
}

/** Options of the n-th subscriber connection: the same target, or for a Cluster the next node. */
export function subscriberOptions(options: ResolvedRedisStoreOptions, commands: CommandClient): (attempt: number) => RedisOptions {
  const { topology } = options;
  if (topology.kind !== 'cluster') return () => redisOptions(options, 'oauth-sidecar:changes');
  return (attempt: number) => {
    const seen = new Map<string, RedisAddress>(topology.nodes.map((node) => [formatHostPort(node), node]));
    if ('nodes' in commands) {
      for (const node of commands.nodes('all')) {
        const address = { host: node.options.host ?? '', port: node.options.port ?? 0 };
        seen.set(formatHostPort(address), address);
      }
    }
    const candidates = [...seen.values()];
    return clusterNodeOptions(options, candidates[attempt % candidates.length]!, 'oauth-sidecar:changes');
  };
}
