/**
 * Shared set-up for the tests with proxy replicas as real processes over real redis-server processes
 * (redis-processes*.test.ts): the config they share, and reading the stored record's generation with
 * redis-cli (not with the store under test).
 */
import type { RedisProcess } from '../helpers/redis-server.js';
import { configYaml } from '../helpers/start-proxy.js';
import { writeProxyConfig } from '../helpers/proxy-process.js';
import type { FakeProvider } from '../helpers/fake-provider.js';
import { upstreamYaml, type UpstreamOptions } from './token-fixtures.js';

/** `store:` fields for one standalone Redis. */
export function standaloneStore(redis: RedisProcess, keyPrefix: string, extra = ''): string {
  return `url: "${redis.url}/0", keyPrefix: "${keyPrefix}"${extra ? `, ${extra}` : ''}`;
}

/** Writes proxy.yaml for replicas in front of `upstreams` (name → provider), over the Redis store given by `storeFields`. */
export function replicaConfig(storeFields: string, upstreams: readonly { fake: FakeProvider; options: UpstreamOptions }[]): string {
  const top = `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, accessLog: false }\ndrainTimeoutMs: 2000\nstore: { type: redis, ${storeFields} }\n`;
  return writeProxyConfig(configYaml(upstreams.map(({ fake, options }) => upstreamYaml(fake, options)).join('\n'), top));
}

/** The Redis key of a credential's record hash (see src/store/redis/keys.ts). */
export function recordKey(keyPrefix: string, upstream: string): string {
  return `{${keyPrefix}${upstream}}:record`;
}

/** The stored generation, read with redis-cli from `server` (0 when there is no record). */
export async function storedGeneration(server: RedisProcess, keyPrefix: string, upstream: string): Promise<number> {
  return Number((await server.cli('HGET', recordKey(keyPrefix, upstream), 'generation')) || 0);
}
