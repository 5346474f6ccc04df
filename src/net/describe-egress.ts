/**
 * How a peer will be reached, in one line for `check`: direct or through which egress proxy (and where
 * that came from), and with which TLS settings. File paths and names only: never a credential, and a
 * proxy's credentials only as "with credentials".
 */
import type { Config, EgressConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { readTlsFilesSync, tlsConnectOptions } from './tls-material.js';

export function describeEgress(egress: EgressConfig, url: string): string {
  const route =
    egress.proxy.kind === 'direct'
      ? `direct (${egress.proxy.reason})`
      : `via proxy ${egress.proxy.origin} (${egress.proxy.source}${egress.proxy.authorization ? ', with credentials' : ''})`;
  return new URL(url).protocol === 'https:' ? `${route}; ${describeTls(egress)}` : `${route}; plain HTTP`;
}

function describeTls(egress: EgressConfig): string {
  const tls = egress.tls;
  if (!tls) return 'TLS 1.2+, system CAs';
  const parts = [`TLS ${tls.minVersion === 'TLSv1.3' ? '1.3' : '1.2+'}`, tls.caFile ? `CA ${tls.caFile}` : 'system CAs'];
  if (tls.certFile) parts.push(`mTLS client certificate ${tls.certFile}${tls.passphrase ? ' (key with passphrase)' : ''}`);
  if (tls.servername) parts.push(`servername ${tls.servername}`);
  return parts.join(', ');
}

/** Problems with the TLS files of every peer (unreadable, not PEM, a key apart from its certificate), each once. */
export function tlsFileProblems(config: Config): string[] {
  const bySetting = new Map<string, string[]>();
  for (const egress of config.upstreams.flatMap((upstream) => [upstream.egress, upstream.auth.egress])) {
    // The token endpoint shares the upstream's tls section unless auth.tls is set: read each section once.
    if (!egress.tls || bySetting.has(egress.tls.setting)) continue;
    try {
      tlsConnectOptions(egress.tls, readTlsFilesSync(egress.tls));
      bySetting.set(egress.tls.setting, []);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      bySetting.set(egress.tls.setting, [...error.problems]);
    }
  }
  return [...bySetting.values()].flat();
}
