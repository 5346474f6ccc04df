/** `oauth-sidecar check`: a human summary of a valid config. Presence of secrets only, never values. */
import type { Config, StoreConfig } from '../config/types.js';

export function describeConfig(config: Config): string {
  const lines = [
    `config ${config.source}: valid`,
    `  proxy   http://${hostPort(config.listen)}`,
    `  admin   ${config.admin ? `http://${hostPort(config.admin)}` : 'off'}`,
    `  store   ${describeStore(config.store)}`,
  ];
  for (const upstream of config.upstreams) {
    const auth = upstream.auth;
    const present = (value: unknown) => (value ? 'set' : 'not set');
    lines.push(
      `  upstream ${upstream.name}`,
      `    route        ${upstream.routePath}/… -> ${upstream.targetOrigin}${upstream.targetBasePath}/…`,
      `    preset       ${auth.preset} (client auth: ${auth.clientAuth}, body: ${auth.bodyEncoding})`,
      `    token url    ${auth.tokenUrl}`,
      `    credentials  clientId ${present(auth.clientId)}, clientSecret ${present(auth.clientSecret)}, refreshToken seed ${present(auth.refreshToken)}${auth.username ? ', password grant set' : ''}`,
      `    replay on    ${[...upstream.replayOn].join(', ')} (bodies up to ${upstream.maxReplayBodyBytes} bytes)`,
    );
    if (auth.missing.length > 0) lines.push(`    NEEDS CREDENTIALS: ${auth.missing.join('; ')}`);
  }
  return lines.join('\n');
}

/** Where the tokens live, without credentials (a redis:// URL may carry a password). */
export function describeStore(store: StoreConfig): string {
  if (store.type === 'file') return `file ${store.path}`;
  if (store.type === 'memory') return 'memory (lost on restart)';
  const nodes = (list: readonly { host: string; port: number }[]) => list.map(hostPort).join(', ');
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

function hostPort(endpoint: { host: string; port: number }): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}
