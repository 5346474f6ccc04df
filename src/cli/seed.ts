/**
 * `oauth-sidecar seed UPSTREAM`: writes a refresh token from stdin to the store as generation + 1.
 * The token is read from stdin so it never appears in argv (visible in `ps`) or shell history.
 */
import { seedRecord } from '../tokens/token-record.js';
import type { Config } from '../config/types.js';
import { CommandError } from '../errors.js';
import { createStore } from '../store/create-store.js';
import { refuseClientCredentialsUpstream, refuseLiveRecord } from './existing-record.js';
import { fingerprint } from '../tokens/fingerprint.js';

export interface SeedOptions {
  upstream: string;
  force: boolean;
  refreshToken: string;
}

/** Returns the line to print; throws a CommandError (or the store's StoreError) with a message for the operator. */
export async function seedRefreshToken(config: Config, options: SeedOptions): Promise<string> {
  const upstream = config.upstreams.find((candidate) => candidate.name === options.upstream);
  if (!upstream) {
    throw new CommandError(
      'UNKNOWN_UPSTREAM',
      `no upstream named "${options.upstream}" in ${config.source} (upstreams: ${config.upstreams.map((u) => u.name).join(', ')})`,
    );
  }
  refuseClientCredentialsUpstream(upstream, 'seed');
  if (!/^[\x21-\x7e]+$/.test(options.refreshToken)) {
    throw new CommandError('NOT_A_REFRESH_TOKEN', 'the refresh token on stdin is empty or has spaces or control characters');
  }
  if (config.store.type === 'memory')
    throw new CommandError('STORE_OUT_OF_REACH', 'the memory store lives inside the proxy process; seeding it from outside has no effect');
  const store = await createStore(config.store);
  try {
    const current = await store.read(options.upstream);
    refuseLiveRecord(options.upstream, current, options.force);
    const next = seedRecord(current, options.refreshToken, 'seed-command', Date.now(), 'seed-command');
    if ((await store.compareAndSet(options.upstream, current?.generation ?? 0, next)) === 'stale') {
      throw new CommandError('RECORD_CHANGED', `the record of ${options.upstream} changed while seeding; run the command again`);
    }
    return `seeded ${options.upstream}: generation ${next.generation}, refresh token ${fingerprint(options.refreshToken)} (${store.description})`;
  } finally {
    await store.close();
  }
}

export async function readStdin(stream: NodeJS.ReadableStream, limitBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > limitBytes) throw new CommandError('NOT_A_REFRESH_TOKEN', 'stdin is too large to be a refresh token');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}
