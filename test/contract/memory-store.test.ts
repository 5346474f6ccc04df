import { createMemoryStore } from '../../src/store/memory-store.js';
import { describeTokenStoreContract } from './token-store.contract.js';

describeTokenStoreContract('memory', async () => createMemoryStore());
