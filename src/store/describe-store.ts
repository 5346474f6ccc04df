/** How a configured store is named in logs, `check` and `status`: the location, never a credential. */
import { formatHostPort } from '../net/endpoint.js';
import type { StoreConfig } from '../config/types.js';

/** Where the tokens live, without credentials (a redis:// URL may carry a password). */
export function describeStore(store: StoreConfig): string {
  if (store.type === 'file') return `file ${store.path}`;
  if (store.type === 'memory') return 'memory (lost on restart)';
  const nodes = (list: readonly { host: string; port: number }[]) => list.map(formatHostPort).join(', ');
  const where = store.url
    ? `redis ${redactUrl(store.url.reveal())}`
    : store.sentinels
      ? `redis sentinel "${store.name ?? ''}" via ${nodes(store.sentinels)}`
      : `redis cluster ${nodes(store.cluster ?? [])}`;
  return `${where}, key prefix "${store.keyPrefix}", records ${store.encryptionKey ? 'encrypted (AES-256-GCM)' : 'not encrypted'}`;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
