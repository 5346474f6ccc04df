/**
 * Every "what to do" the proxy tells an operator comes from here, one sentence per state, so that `check`,
 * `/readyz`, the 503 bodies, `status` and the log agree, and each names the command as the operator runs it.
 */
import { basename, isAbsolute, relative } from 'node:path';
import type { AuthConfig } from './config/types.js';

/**
 * How this program is run: `$OAUTH_SIDECAR_COMMAND` where the installation says (the image puts the bin
 * on PATH and sets it), `oauth-sidecar` when run through the installed bin link, or the path to
 * bin/oauth-sidecar.js as typed in a clone, where nothing is on PATH.
 */
export function cliCommand(
  script: string | undefined = process.argv[1],
  cwd: string = process.cwd(),
  configured = process.env.OAUTH_SIDECAR_COMMAND,
): string {
  if (configured) return configured;
  if (!script || basename(script) !== 'oauth-sidecar.js') return 'oauth-sidecar';
  const path = relative(cwd, script);
  return path.startsWith('..') || isAbsolute(path) ? script : `./${path}`;
}

/** How an upstream gets its first (or a new) refresh token; with grant client_credentials, how it gets its tokens. */
export function firstTokenHint(
  name: string,
  auth: Pick<AuthConfig, 'preset' | 'authorizeUrl' | 'username'> & Partial<Pick<AuthConfig, 'grant'>>,
  cli = cliCommand(),
): string {
  if (auth.grant === 'client_credentials')
    return 'none to seed: the proxy gets its tokens with auth.clientId and auth.clientSecret (grant client_credentials) as it starts';
  const seed = `printf '%s' "$TOKEN" | ${cli} seed ${name}`;
  const browserLogin = auth.preset === 'collaborate' || auth.preset === 'v3' || auth.authorizeUrl !== undefined;
  if (browserLogin) return `run ${cli} login ${name} (a browser sign-in), or ${seed}`;
  if (auth.preset === 'apiax') {
    return auth.username
      ? `the password grant is configured; check auth.username and auth.password, or ${seed}`
      : `set auth.username and auth.password (the password grant), or ${seed}`;
  }
  return `${seed} (or set auth.refreshToken and restart)`;
}

/** After the token endpoint rejected the credential for good. */
export function deadCredentialHint(
  name: string,
  auth: Pick<AuthConfig, 'preset' | 'authorizeUrl' | 'username'>,
  cli = cliCommand(),
): string {
  return `a new refresh token is needed: ${firstTokenHint(name, auth, cli)}`;
}

/** After the token endpoint refused the client credentials of an upstream with grant client_credentials. */
export function clientCredentialsHint(upstream: string, providerCode: string | undefined): string {
  const secret = `auth.clientSecret (e.g. export ${envName(upstream, 'clientSecret')}=… and restart: a changed secret is tried at once)`;
  // RFC 6749 §5.2: the client is known but may not use this grant type.
  if (providerCode === 'unauthorized_client')
    return `allow the client_credentials grant for auth.clientId at the provider, or check ${secret}`;
  return `check auth.clientId and ${secret}`;
}

/** A credential setting the config left empty. */
export function missingSettingHint(upstream: string, setting: 'clientId' | 'clientSecret'): string {
  return `auth.${setting} (e.g. export ${envName(upstream, setting)}=… and restart)`;
}

function envName(upstream: string, setting: 'clientId' | 'clientSecret'): string {
  return `${upstream.toUpperCase().replace(/-/g, '_')}_${setting === 'clientId' ? 'CLIENT_ID' : 'CLIENT_SECRET'}`;
}
