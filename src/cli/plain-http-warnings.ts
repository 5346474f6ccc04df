/**
 * Settings that would send credentials over plain HTTP beyond this machine. Not errors: a lab upstream or
 * a mesh that encrypts pod traffic (mTLS) may be meant, but the operator should have chosen it knowingly.
 * Loopback is exempt: it never leaves the host (or the pod), which is how the tests and the demo run.
 */
import type { Config } from '../config/types.js';
import { isLoopback } from '../net/is-loopback.js';

export function plainHttpWarnings(config: Config): string[] {
  const warnings: string[] = [];
  for (const upstream of config.upstreams) {
    const where = `upstreams.${upstream.name}`;
    const tokenHost = plainHttpHostBeyondLoopback(upstream.auth.tokenUrl);
    if (tokenHost !== undefined) {
      warnings.push(
        `${where}.auth.tokenUrl is http:// to ${tokenHost}: client credentials, refresh tokens and the tokens it returns would cross the network in clear text; use https://`,
      );
    }
    const targetHost = plainHttpHostBeyondLoopback(upstream.targetOrigin);
    if (targetHost !== undefined) {
      warnings.push(`${where}.target is http:// to ${targetHost}: every request would carry the bearer token in clear text; use https://`);
    }
  }
  return warnings;
}

/** The host of a plain http:// URL that is not loopback, else undefined. */
function plainHttpHostBeyondLoopback(url: string): string | undefined {
  const parsed = new URL(url);
  return parsed.protocol === 'http:' && !isLoopback(parsed.hostname) ? parsed.host : undefined;
}
