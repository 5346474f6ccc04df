/**
 * How an upstream gets its tokens (auth.grant), as one small strategy the token core asks instead of testing
 * the grant type itself:
 *   - `refresh_token`: a one-time refresh token from the record (seeded from the config, `seed` or `login`),
 *     with Apiax's password grant as the way back. Sending it spends it, so the in-flight mark guards it, a
 *     dead verdict in the store stops every replica, and refreshing without the store's lock is opt-in.
 *   - `client_credentials` (generic oauth2): the client id and secret get every token (RFC 6749 §4.4). There
 *     is nothing to spend: no mark, no "probably spent", no seed. The lock and the stored record still make
 *     one token call per expiry for all replicas together. A dead verdict holds only for the client
 *     credentials it was given on, so a corrected secret (or a verdict about a refresh token) never blocks.
 */
import type { AuthConfig } from '../config/types.js';
import type { TokenEndpointError } from '../errors.js';
import { clientCredentialsHint, deadCredentialHint } from '../operator-hints.js';
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenGrant } from './providers/oauth2-client.js';

export interface GrantStrategy {
  readonly name: AuthConfig['grant'];
  /** The refresh token seed from the config, stored by the first read where it applies. */
  readonly seed: string | undefined;
  /** A token call may spend a one-time refresh token: mark it in flight and respect other replicas' marks. */
  readonly spendsRefreshTokens: boolean;
  /** With the store unreachable, refresh without its lock (nothing can be spent twice, or the operator allowed it). */
  readonly refreshWithoutLock: boolean;
  /** The grants to try for the next token, in order; empty when there is nothing to get one with. */
  grantsFor(record: TokenRecord | undefined, now: number): TokenGrant[];
  /** Whether this dead record is a verdict on this replica's credential (and so stops it from asking again). */
  verdictHolds(record: TokenRecord): boolean;
  /** A record this replica is about to store, in the form this grant keeps (see clientCredentials). */
  stamp(record: TokenRecord): TokenRecord;
  /** What the dead record says was rejected and how to fix it. */
  deathReason(upstream: string, failure: TokenEndpointError, unfinished: TokenRecord['refreshInFlight']): string;
}

export function grantStrategy(auth: AuthConfig): GrantStrategy {
  return auth.grant === 'client_credentials' ? clientCredentials(auth) : refreshTokens(auth);
}

function refreshTokens(auth: AuthConfig): GrantStrategy {
  return {
    name: 'refresh_token',
    seed: auth.refreshToken?.reveal(),
    spendsRefreshTokens: true,
    refreshWithoutLock: auth.refreshWithoutLock,
    grantsFor(record, now) {
      const grants: TokenGrant[] = [];
      const refreshToken = record?.refreshToken;
      const refreshExpired = record?.refreshTokenExpiresAt !== undefined && record.refreshTokenExpiresAt <= now;
      if (refreshToken && !refreshExpired) grants.push({ type: 'refresh_token', refreshToken });
      // The password grant (Apiax) gets the first token, and revives a credential whose refresh token died.
      if (auth.username && auth.password) grants.push({ type: 'password', username: auth.username, password: auth.password.reveal() });
      return grants;
    },
    // Another replica found the refresh token rejected: sending it again would be one more reuse of a spent
    // token, which can kill a Keycloak session that was still alive.
    verdictHolds: () => true,
    stamp: (record) => record,
    deathReason(upstream, failure, unfinished) {
      const what = failure.kind === 'client_rejected' ? 'the client credentials were rejected' : 'the refresh token was rejected';
      const context = unfinished
        ? `; an earlier refresh with this refresh token (${unfinished.owner}, ${new Date(unfinished.since).toISOString()}) did not finish and probably spent it`
        : '';
      const clientFix = failure.kind === 'client_rejected' ? 'check auth.clientId and auth.clientSecret, then ' : '';
      return `${what}: ${failure.message}${context}. Fix: ${clientFix}${deadCredentialHint(upstream, auth)}`;
    },
  };
}

function clientCredentials(auth: AuthConfig): GrantStrategy {
  // Which client credentials a record was obtained (or rejected) with, kept in the record's seedFingerprint:
  // a record descends from them as a refresh-token record descends from its seed. Never shown anywhere.
  const credentials = fingerprintOf(`client_credentials\u0000${auth.clientId ?? ''}\u0000${auth.clientSecret?.reveal() ?? ''}`);
  return {
    name: 'client_credentials',
    seed: undefined,
    spendsRefreshTokens: false,
    // The lock only saves token calls here; without the store every replica may get its own token.
    refreshWithoutLock: true,
    grantsFor: () => [{ type: 'client_credentials' }],
    // A verdict given on other credentials (a secret since corrected, a replica still on the old one during a
    // rollout, a refresh token from before the grant changed) says nothing about these.
    verdictHolds: (record) => record.seedFingerprint === credentials,
    stamp(record) {
      // A refresh token the provider sent anyway (RFC 6749 §4.4.3 says it should not) is never used: not kept.
      const { refreshToken: _unused, refreshTokenExpiresAt: _expiry, refreshInFlight: _mark, ...rest } = record;
      return { ...rest, seedFingerprint: credentials };
    },
    deathReason(upstream, failure) {
      return `the token endpoint refused the client credentials (grant client_credentials): ${failure.message}. Fix: ${clientCredentialsHint(upstream, failure.providerCode)}`;
    },
  };
}

function fingerprintOf(text: string): string {
  return fingerprint(text) ?? '';
}
