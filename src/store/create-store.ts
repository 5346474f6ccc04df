import type { StoreConfig } from '../config/types.js';
import { createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import type { TokenStore } from './token-store.js';

export async function createStore(config: StoreConfig): Promise<TokenStore> {
  switch (config.type) {
    case 'file':
      return createFileStore(config.path);
    case 'memory':
      return createMemoryStore();
  }
}
