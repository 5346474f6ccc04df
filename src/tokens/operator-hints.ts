/** What an operator runs to give an upstream its first (or a new) refresh token. */
import type { AuthConfig } from '../config/types.js';

export function firstTokenHint(name: string, auth: Pick<AuthConfig, 'preset'>): string {
  const env = `${name.toUpperCase().replace(/-/g, '_')}_REFRESH_TOKEN`;
  const login = auth.preset === 'collaborate' || auth.preset === 'v3' ? `, or oauth-sidecar login ${name}` : auth.preset === 'apiax' ? ', or set auth.username and auth.password' : '';
  return `export ${env}=… (if proxy.yaml references it) and restart, or printf '%s' "$TOKEN" | oauth-sidecar seed ${name}${login}`;
}
