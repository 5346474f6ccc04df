import type { StoreConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import type { TokenStore } from './token-store.js';

export interface CreateStoreOptions {
  /** `serve` only: hold the file store's lease under this owner id (one proxy per token file). */
  leaseOwner?: string;
}

export async function createStore(config: StoreConfig, logger?: Logger, options: CreateStoreOptions = {}): Promise<TokenStore> {
  switch (config.type) {
    case 'file':
      return createFileStore(config.path, options.leaseOwner ? { lease: { owner: options.leaseOwner } } : {});
    case 'memory':
      return createMemoryStore();
    case 'redis': {
      // Loaded only when configured: a single replica on the file store never loads ioredis.
      const { createRedisStore } = await import('./redis-store.js');
      return createRedisStore({
        ...(config.url ? { url: config.url.reveal() } : {}),
        ...(config.sentinels ? { sentinels: config.sentinels, name: config.name ?? '' } : {}),
        ...(config.cluster ? { cluster: config.cluster } : {}),
        ...(config.username ? { username: config.username } : {}),
        ...(config.password ? { password: config.password.reveal() } : {}),
        keyPrefix: config.keyPrefix,
        ...(config.encryptionKey ? { encryptionKey: config.encryptionKey } : {}),
        commandTimeoutMs: config.commandTimeoutMs,
        onEvent: (event, detail) => {
          const level = event === 'disconnected' || event === 'connection-error' || event === 'resync-failed' ? 'warn' : 'info';
          logger?.[level]({ event: `redis_${event.replace(/-/g, '_')}`, ...detail }, `token store: ${event}`);
        },
      });
    }
  }
}
