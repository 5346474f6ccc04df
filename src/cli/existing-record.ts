/**
 * The one rule `seed` and `login` share before they write a new generation: a record that still holds
 * usable tokens is replaced only with --force. Replacing it by accident would throw away a working
 * credential (and, for one-time refresh tokens, the only unspent one); a dead or empty record needs no
 * permission to be replaced, since reviving it is what both commands are for.
 */
import type { UpstreamConfig } from '../config/types.js';
import { CommandError } from '../errors.js';
import type { TokenRecord } from '../store/token-store.js';

/** Live: not a dead verdict, and it still holds a refresh token or an access token. */
export function isLiveRecord(record: TokenRecord): boolean {
  return !record.dead && Boolean(record.refreshToken || record.accessToken);
}

/** Throws RECORD_LIVE when `current` is live and the operator did not ask for --force. */
export function refuseLiveRecord(upstream: string, current: TokenRecord | undefined, force: boolean): void {
  if (current && isLiveRecord(current) && !force) {
    throw new CommandError(
      'RECORD_LIVE',
      `upstream ${upstream} already has a live record (generation ${current.generation}); use --force to replace it`,
    );
  }
}

/** seed and login store a refresh token: an upstream on the client_credentials grant has no use for one. */
export function refuseClientCredentialsUpstream(upstream: UpstreamConfig, command: 'seed' | 'login'): void {
  if (upstream.auth.grant !== 'client_credentials') return;
  throw new CommandError(
    'NO_REFRESH_TOKEN_GRANT',
    `upstream ${upstream.name} uses grant client_credentials: the proxy gets its tokens with auth.clientId and auth.clientSecret, so there is nothing to ${command}`,
  );
}
