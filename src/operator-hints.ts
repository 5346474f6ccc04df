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

/** How an upstream gets its first (or a new) refresh token. */
export function firstTokenHint(name: string, auth: Pick<AuthConfig, 'preset' | 'authorizeUrl' | 'username'>, cli = cliCommand()): string {
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

/** A credential setting the config left empty. */
export function missingSettingHint(upstream: string, setting: 'clientId' | 'clientSecret'): string {
  const env = `${upstream.toUpperCase().replace(/-/g, '_')}_${setting === 'clientId' ? 'CLIENT_ID' : 'CLIENT_SECRET'}`;
  return `auth.${setting} (e.g. export ${env}=… and restart)`;
}
