/**
 * `oauth-sidecar seed UPSTREAM`: writes a refresh token from stdin to the store as generation + 1.
 * The token is read from stdin so it never appears in argv (visible in `ps`) or shell history.
 */
import type { Config } from '../config/types.js';
import { createStore } from '../store/create-store.js';
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from '../tokens/fingerprint.js';

export interface SeedOptions {
  upstream: string;
  force: boolean;
  refreshToken: string;
}

/** Returns the line to print; throws an Error with a message for the operator. */
export async function seedRefreshToken(config: Config, options: SeedOptions): Promise<string> {
  if (!config.upstreams.some((upstream) => upstream.name === options.upstream)) {
    throw new Error(`no upstream named "${options.upstream}" in ${config.source} (upstreams: ${config.upstreams.map((u) => u.name).join(', ')})`);
  }
  if (!/^[\x21-\x7e]+$/.test(options.refreshToken)) {
    throw new Error('the refresh token on stdin is empty or has spaces or control characters');
  }
  if (config.store.type === 'memory') throw new Error('the memory store lives inside the proxy process; seeding it from outside has no effect');
  const store = await createStore(config.store);
  try {
    const current = await store.read(options.upstream);
    if (current && isLive(current) && !options.force) {
      throw new Error(`upstream ${options.upstream} already has a live record (generation ${current.generation}); use --force to replace it`);
    }
    const next: TokenRecord = {
      generation: (current?.generation ?? 0) + 1,
      refreshToken: options.refreshToken,
      obtainedAt: Date.now(),
      source: 'seed-command',
      seedFingerprint: fingerprint(options.refreshToken) ?? '',
      writer: 'seed-command',
    };
    if ((await store.compareAndSet(options.upstream, current?.generation ?? 0, next)) === 'stale') {
      throw new Error(`the record of ${options.upstream} changed while seeding; run the command again`);
    }
    return `seeded ${options.upstream}: generation ${next.generation}, refresh token ${fingerprint(options.refreshToken)} (${store.description})`;
  } finally {
    await store.close();
  }
}

function isLive(record: TokenRecord): boolean {
  return !record.dead && Boolean(record.refreshToken || record.accessToken);
}

export async function readStdin(stream: NodeJS.ReadableStream, limitBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > limitBytes) throw new Error('stdin is too large to be a refresh token');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}
