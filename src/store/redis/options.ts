/**
 * Options of the Redis token store: checked once, every problem listed in one StoreError, then frozen.
 * Messages name the option but never echo a URL (it may hold a password) or a key.
 */
import { COMMAND_TIMEOUT_MS } from '../../config/redis-limits.js';
import { StoreError } from '../../errors.js';

export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** Events the store reports; none of the details ever holds a token or a password. */
export type RedisStoreEvent =
  /** A connection was lost; ioredis reconnects with the capped backoff. detail: connection, endpoint, reason. */
  | 'disconnected'
  /** A lost connection is ready again. detail: connection, endpoint. */
  | 'reconnected'
  /** An ioredis connection error (also emitted while reconnecting, at most once per attempt). */
  | 'connection-error'
  /** The subscriber came back: the current generation of every key seen so far was announced. detail: keys. */
  | 'resync'
  /** A resync could not read a key's generation (the command connection is still down). detail: key, reason. */
  | 'resync-failed'
  /** compareAndSet found its own write already stored (a retry after a lost reply) and returned 'applied'. */
  | 'already-applied'
  /** A pub/sub message that is not `{key, generation}` was ignored. detail: channel. */
  | 'bad-message';

export type RedisStoreEventListener = (event: RedisStoreEvent, detail: Record<string, unknown>) => void;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS. One of url, sentinels, cluster. */
  url?: string;
  /** Redis Sentinel addresses; needs `name`. */
  sentinels?: readonly RedisAddress[];
  /** Sentinel master group name. */
  name?: string;
  /** Redis Cluster start-up nodes. */
  cluster?: readonly RedisAddress[];
  /** Credentials of the data nodes for sentinels/cluster (with `url`, put them in the URL). */
  username?: string;
  password?: string;
  /** Prefix of every key; must not contain `{` or `}` (the hash tag). Default "oauth-sidecar:". */
  keyPrefix?: string;
  /** 32 bytes: token records are stored AES-256-GCM encrypted. */
  encryptionKey?: Buffer;
  /** Bound of one Redis command (ioredis commandTimeout); a store operation fails within 2x this. Default 500. */
  commandTimeoutMs?: number;
  onEvent?: RedisStoreEventListener;
}

export type RedisTopology =
  | { readonly kind: 'standalone'; readonly address: RedisAddress; readonly db: number; readonly tls: boolean }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly RedisAddress[]; readonly name: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly RedisAddress[] };

export interface ResolvedRedisStoreOptions {
  readonly topology: RedisTopology;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly keyPrefix: string;
  readonly encryptionKey: Buffer | undefined;
  readonly commandTimeoutMs: number;
  readonly onEvent: RedisStoreEventListener;
}

export const DEFAULT_KEY_PREFIX = 'oauth-sidecar:';
export const DEFAULT_COMMAND_TIMEOUT_MS = COMMAND_TIMEOUT_MS.default;

const KNOWN = new Set([
  'url',
  'sentinels',
  'name',
  'cluster',
  'username',
  'password',
  'keyPrefix',
  'encryptionKey',
  'commandTimeoutMs',
  'onEvent',
]);
const HINTS: Record<string, string> = {
  prefix: 'keyPrefix',
  keyprefix: 'keyPrefix',
  masterName: 'name',
  sentinelName: 'name',
  nodes: 'cluster',
  clusterNodes: 'cluster',
  commandTimeout: 'commandTimeoutMs',
  timeout: 'commandTimeoutMs',
  timeoutMs: 'commandTimeoutMs',
  key: 'encryptionKey',
  encryption_key: 'encryptionKey',
  host: 'url',
  port: 'url',
};

export function resolveRedisStoreOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  const problems: string[] = [];
  for (const name of Object.keys(options)) {
    if (KNOWN.has(name)) continue;
    const hint = HINTS[name];
    problems.push(`unknown option "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
  }

  const given = (['url', 'sentinels', 'cluster'] as const).filter((name) => options[name] !== undefined);
  if (given.length !== 1) {
    problems.push(
      given.length === 0
        ? 'one of url, sentinels or cluster is required'
        : `url, sentinels and cluster exclude each other; got ${given.join(' and ')}`,
    );
  }
  if (options.name !== undefined && options.sentinels === undefined) problems.push('name is only used with sentinels');
  if (options.sentinels !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    problems.push('sentinels need name: the master group name the sentinels monitor');
  }

  let topology: RedisTopology | undefined;
  let username = optionalString(options.username, 'username', problems);
  let password = optionalString(options.password, 'password', problems);
  if (options.url !== undefined) {
    const parsed = parseRedisUrl(options.url, problems);
    if (parsed) {
      topology = { kind: 'standalone', address: parsed.address, db: parsed.db, tls: parsed.tls };
      if ((parsed.username !== undefined && username !== undefined) || (parsed.password !== undefined && password !== undefined)) {
        problems.push('credentials are given both in url and as username/password; keep one');
      }
      username ??= parsed.username;
      password ??= parsed.password;
    }
  }
  if (options.sentinels !== undefined) {
    const sentinels = addressList(options.sentinels, 'sentinels', problems);
    if (sentinels && typeof options.name === 'string' && options.name !== '')
      topology = { kind: 'sentinel', sentinels, name: options.name };
  }
  if (options.cluster !== undefined) {
    const nodes = addressList(options.cluster, 'cluster', problems);
    if (nodes) topology = { kind: 'cluster', nodes };
  }

  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== 'string') problems.push('keyPrefix must be a string');
  else if (/[{}]/.test(keyPrefix))
    problems.push('keyPrefix must not contain "{" or "}": the store wraps prefix and key in a Cluster hash tag');

  const encryptionKey = options.encryptionKey;
  if (encryptionKey !== undefined && (!Buffer.isBuffer(encryptionKey) || encryptionKey.length !== 32)) {
    problems.push(
      `encryptionKey must be a Buffer of 32 bytes (AES-256), got ${Buffer.isBuffer(encryptionKey) ? `${encryptionKey.length} bytes` : typeof encryptionKey}`,
    );
  }

  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  if (!Number.isInteger(commandTimeoutMs) || commandTimeoutMs < COMMAND_TIMEOUT_MS.min || commandTimeoutMs > COMMAND_TIMEOUT_MS.max) {
    problems.push(`commandTimeoutMs must be an integer from ${COMMAND_TIMEOUT_MS.min} to ${COMMAND_TIMEOUT_MS.max} (milliseconds)`);
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') problems.push('onEvent must be a function');

  if (problems.length > 0 || !topology) {
    throw new StoreError(`invalid redis store options:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
  return Object.freeze({
    topology,
    username,
    password,
    keyPrefix,
    encryptionKey,
    commandTimeoutMs,
    onEvent: options.onEvent ?? (() => {}),
  });
}

function optionalString(value: unknown, name: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    problems.push(`${name} must be a non-empty string`);
    return undefined;
  }
  return value;
}

function parseRedisUrl(
  text: unknown,
  problems: string[],
): { address: RedisAddress; db: number; tls: boolean; username: string | undefined; password: string | undefined } | undefined {
  let url: URL;
  try {
    if (typeof text !== 'string') throw new TypeError('not a string');
    url = new URL(text);
  } catch {
    problems.push('url is not a valid URL (expected redis://host:port/db or rediss://…)');
    return undefined;
  }
  const before = problems.length;
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    problems.push(`url must start with redis:// or rediss://, not ${url.protocol}//`);
  if (url.hostname === '') problems.push('url has no host');
  if (url.search !== '' || url.hash !== '') problems.push('url must not have a query or fragment');
  const path = url.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!/^\d*$/.test(path) || !Number.isInteger(db) || db > 15) problems.push('url path must be a database number from 0 to 15');
  if (problems.length > before) return undefined;
  return {
    // URL keeps the brackets of an IPv6 literal; ioredis wants the bare address.
    address: { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) },
    db,
    tls: url.protocol === 'rediss:',
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
  };
}

function addressList(value: unknown, name: string, problems: string[]): RedisAddress[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`${name} must be a non-empty list of {host, port}`);
    return undefined;
  }
  const before = problems.length;
  const addresses = value.map((entry: unknown, index): RedisAddress => {
    const { host, port } = (typeof entry === 'object' && entry !== null ? entry : {}) as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || host === '') problems.push(`${name}[${index}].host must be a non-empty string`);
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535)
      problems.push(`${name}[${index}].port must be an integer from 1 to 65535`);
    return { host: String(host), port: Number(port) };
  });
  return problems.length > before ? undefined : addresses;
}
