/**
 * `oauth-sidecar check`: a human summary of a valid config. Presence of secrets only, never values.
 * Warnings (plain HTTP beyond loopback) are listed at the end; they do not make the config invalid.
 */
import { firstTokenHint } from '../operator-hints.js';
import { formatHostPort } from '../net/endpoint.js';
import type { Config } from '../config/types.js';
import { describeStore } from '../store/describe-store.js';
import { plainHttpWarnings } from './plain-http-warnings.js';
import { describeEgress } from '../net/describe-egress.js';

export function describeConfig(config: Config): string {
  const lines = [
    `config ${config.source}: valid`,
    `  proxy   http://${formatHostPort(config.listen)}`,
    `  admin   ${config.admin ? `http://${formatHostPort(config.admin)}` : 'off'}`,
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
      `    egress       target: ${describeEgress(upstream.egress, upstream.targetOrigin)}`,
      `                 token endpoint: ${describeEgress(auth.egress, auth.tokenUrl)}`,
      `    credentials  clientId ${present(auth.clientId)}, clientSecret ${present(auth.clientSecret)}, refreshToken seed ${present(auth.refreshToken)}${auth.username ? ', password grant set' : ''}`,
      `    replay on    ${[...upstream.replayOn].join(', ')} (bodies up to ${upstream.maxReplayBodyBytes} bytes)`,
    );
    if (auth.missing.length > 0) lines.push(`    NEEDS CREDENTIALS: ${auth.missing.join('; ')}`);
    // The store may hold a token already (check does not read it); this is how to get one if not.
    if (!auth.refreshToken) lines.push(`    first token  ${firstTokenHint(upstream.name, auth)}`);
  }
  for (const warning of plainHttpWarnings(config)) lines.push(`WARNING ${warning}`);
  return lines.join('\n');
}
