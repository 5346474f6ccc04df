/**
 * What to do when the upstream rejects a request's token, decided before its response is thrown away
 * for a replay. Pure: the inputs are a snapshot of the token manager.
 */
import type { TokenRecord } from '../store/token-store.js';

/**
 * newer: a newer token is already here, replay with it; refresh: refresh (or join the refresh under way)
 * and replay; unavailable: no new token can be had now (the token endpoint is failing), answer a 503
 * rather than the stale rejection; none: the rejection stands, pass it on.
 */
export type ReplayDecision = 'newer' | 'refresh' | 'unavailable' | 'none';

/** How long a token fetched because of a rejection, and rejected too, is taken as refused for another reason. */
export const SUSPECT_REJECTION_WINDOW_MS = 60_000;

export interface ReplaySnapshot {
  readonly rejectedGeneration: number;
  readonly record: TokenRecord | undefined;
  /** Generation of the usable token held now, if any. */
  readonly usableGeneration: number | undefined;
  /** Dead, or needs credentials: no refresh can help. */
  readonly unusable: boolean;
  /** Backing off after the token endpoint failed, with no refresh under way. */
  readonly backingOff: boolean;
  /** A replay with this generation was accepted here: rejections of it are about the token again. */
  readonly trustedGeneration: number;
  readonly now: number;
}

export function decideReplay(s: ReplaySnapshot): ReplayDecision {
  if (s.unusable) return 'none';
  if (s.usableGeneration !== undefined && s.usableGeneration > s.rejectedGeneration) return 'newer';
  // An older token than the one we hold was rejected, and ours is not usable: nothing better to offer.
  if (s.rejectedGeneration !== (s.record?.generation ?? 0)) return 'none';
  // Bounded: a token fetched because its predecessor was rejected, and rejected too, means the upstream
  // refuses for another reason (Collaborate's 403 for a forbidden resource). The mark is born with the
  // record, so every replica has it as soon as it has the token, and all of them together refresh at most
  // once per generation; after the window a revoked token still recovers before its clock refresh.
  if (isSuspect(s)) return 'none';
  // Backing off after a failed refresh: a rejection never starts a refresh early, or every rejected request
  // during a token endpoint outage would send a token request of its own.
  if (s.backingOff) return 'unavailable';
  return 'refresh';
}

export function isSuspect(s: Pick<ReplaySnapshot, 'record' | 'rejectedGeneration' | 'trustedGeneration' | 'now'>): boolean {
  const record = s.record;
  return (
    Boolean(record?.fetchedAfterRejection) &&
    s.trustedGeneration !== s.rejectedGeneration &&
    s.now - (record?.obtainedAt ?? 0) < SUSPECT_REJECTION_WINDOW_MS
  );
}
