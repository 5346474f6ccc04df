/**
 * The log lines of a refresh's outcome (token_refreshed, refresh_failed, credential_dead), with the fields
 * dashboards and alerts key on. Fingerprints only, never a token.
 */
import type { Logger } from '../log.js';
import type { TokenEndpointError } from '../errors.js';
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenGrant } from './providers/oauth2-client.js';

export interface RefreshOutcome {
  readonly log: Logger;
  readonly upstream: string;
  /** Why the refresh ran (startup, scheduled, expired, rejected, retry). */
  readonly reason: string;
  readonly latencyMs: number;
}

export function logRefreshed(at: RefreshOutcome, record: TokenRecord, grant: TokenGrant, now: number): void {
  at.log.info(
    {
      event: 'token_refreshed',
      outcome: 'success',
      reason: at.reason,
      grant: grant.type,
      generation: record.generation,
      latencyMs: at.latencyMs,
      expiresInSeconds: Math.round(((record.accessTokenExpiresAt ?? now) - now) / 1000),
      accessTokenFingerprint: fingerprint(record.accessToken),
      refreshTokenFingerprint: fingerprint(record.refreshToken),
      refreshTokenRotated: grant.type === 'refresh_token' && record.refreshToken !== grant.refreshToken,
    },
    `new token for ${at.upstream} (generation ${record.generation})`,
  );
}

export function logTransient(
  at: RefreshOutcome,
  failure: TokenEndpointError,
  next: { failures: number; delayMs: number; keeping: boolean },
): void {
  const keeping = next.keeping ? 'keeping the current token' : 'no usable token meanwhile';
  at.log.warn(
    {
      event: 'refresh_failed',
      outcome: 'transient_error',
      reason: at.reason,
      latencyMs: at.latencyMs,
      httpStatus: failure.httpStatus,
      failures: next.failures,
      retryInMs: Math.round(next.delayMs),
    },
    `token refresh for ${at.upstream} failed (${failure.message}); ${keeping}; retrying in ${Math.round(next.delayMs / 1000)} s`,
  );
}

export function logDead(
  at: RefreshOutcome,
  record: TokenRecord,
  failure: TokenEndpointError,
  outcome: 'client_rejected' | 'credential_dead',
): void {
  at.log.error(
    {
      event: 'credential_dead',
      outcome,
      reason: at.reason,
      latencyMs: at.latencyMs,
      providerCode: failure.providerCode,
      httpStatus: failure.httpStatus,
    },
    `CREDENTIAL DEAD for ${at.upstream}: ${record.dead?.reason ?? failure.message}`,
  );
}
