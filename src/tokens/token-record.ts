/** Building token records: the seed, the record after a successful token request, and what is usable. */
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenGrant } from './providers/oauth2-client.js';
import type { TokenResponse } from './providers/parse-token-response.js';
import { DEFAULT_TOKEN_LIFETIME_MS } from './refresh-schedule.js';

/**
 * A record that holds only a refresh token, from the config (`seed`) or from a person running
 * `oauth-sidecar seed` (`seed-command`); the first refresh turns it into a token pair.
 */
export function seedRecord(
  previous: TokenRecord | undefined,
  refreshToken: string,
  writer: string,
  now = Date.now(),
  source: 'seed' | 'seed-command' = 'seed',
): TokenRecord {
  return {
    generation: (previous?.generation ?? 0) + 1,
    refreshToken,
    obtainedAt: now,
    source,
    seedFingerprint: fingerprint(refreshToken),
    writer,
  };
}

/** The record that replaces `previous` after a successful token request sent at `sentAt`. */
export function nextRecord(
  previous: TokenRecord | undefined,
  tokens: TokenResponse,
  grant: TokenGrant,
  sentAt: number,
  writer: string,
  options: { afterRejection?: boolean } = {},
): TokenRecord {
  // A provider that does not rotate returns no refresh token: the one we sent stays valid.
  const keptRefreshToken = grant.type === 'refresh_token' ? grant.refreshToken : undefined;
  const refreshToken = tokens.refreshToken ?? keptRefreshToken;
  const refreshTokenExpiresAt = tokens.refreshToken ? tokens.refreshTokenExpiresAt : previous?.refreshTokenExpiresAt;
  return {
    generation: (previous?.generation ?? 0) + 1,
    accessToken: tokens.accessToken,
    accessTokenExpiresAt: tokens.accessTokenExpiresAt ?? sentAt + DEFAULT_TOKEN_LIFETIME_MS,
    ...(refreshToken ? { refreshToken } : {}),
    ...(refreshTokenExpiresAt ? { refreshTokenExpiresAt } : {}),
    obtainedAt: sentAt,
    source: sourceOf(grant),
    ...(previous?.seedFingerprint ? { seedFingerprint: previous.seedFingerprint } : {}),
    ...(options.afterRejection ? { fetchedAfterRejection: true as const } : {}),
    writer,
  };
}

/**
 * A client_credentials token is stored as `refresh` (fetched by the proxy on its own), a value every
 * version's record schema knows, so replicas of an older version in a rollout still read the record.
 */
function sourceOf(grant: TokenGrant): TokenRecord['source'] {
  return grant.type === 'refresh_token' || grant.type === 'client_credentials' ? 'refresh' : grant.type;
}

/** A configured seed that differs from what killed the stored credential: a person put in a new one, so use it. */
export function isNewSeedForDeadRecord(record: TokenRecord, seed: string): boolean {
  const seedPrint = fingerprint(seed);
  return Boolean(record.dead) && seedPrint !== record.seedFingerprint && seedPrint !== fingerprint(record.refreshToken);
}

export function usableAccessToken(record: TokenRecord | undefined): { token: string; expiresAt: number } | undefined {
  if (!record?.accessToken || record.dead) return undefined;
  return { token: record.accessToken, expiresAt: record.accessTokenExpiresAt ?? record.obtainedAt + DEFAULT_TOKEN_LIFETIME_MS };
}

/**
 * The record that says the token endpoint rejected this credential for good, and why. It is a generation
 * of its own: every replica hears of it through the change feed, and a late write that expected the
 * previous generation is refused instead of overwriting the verdict.
 */
export function deadRecord(previous: TokenRecord | undefined, reason: string, writer: string, now = Date.now()): TokenRecord {
  const base: TokenRecord = previous ?? { generation: 0, obtainedAt: now, source: 'refresh', writer };
  const { refreshInFlight: _mark, fetchedAfterRejection: _rejection, ...rest } = base;
  return { ...rest, generation: base.generation + 1, dead: { at: now, reason }, writer };
}

/** The same record without its in-flight mark. */
export function withoutMark(record: TokenRecord): TokenRecord {
  const { refreshInFlight: _mark, ...unmarked } = record;
  return unmarked;
}
