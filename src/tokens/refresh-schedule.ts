/** When to refresh a token early, and how long to back off after a failed refresh. */

/** Tokens that do not say when they expire get this lifetime; a rejection still triggers a refresh sooner. */
export const DEFAULT_TOKEN_LIFETIME_MS = 5 * 60 * 1000;

export interface EarlyRefresh {
  /** Refresh when this fraction of the lifetime has passed… */
  readonly fraction: number;
  /** …or this many seconds before expiry, whichever is earlier. */
  readonly seconds: number;
}

/**
 * The moment to refresh a token obtained at `obtainedAt` that expires at `expiresAt`: the earlier of
 * the two early-refresh rules, but never before half the lifetime, so that a short-lived token
 * (shorter than `seconds`) is not refreshed the moment it arrives.
 */
export function refreshAt(obtainedAt: number, expiresAt: number, rule: EarlyRefresh): number {
  const lifetime = Math.max(0, expiresAt - obtainedAt);
  const byFraction = obtainedAt + lifetime * rule.fraction;
  const bySeconds = expiresAt - rule.seconds * 1000;
  return Math.max(Math.min(byFraction, bySeconds), obtainedAt + lifetime / 2);
}

/** Exponential backoff with jitter after `failures` consecutive transient failures: ~1 s, 2 s, 4 s … 60 s. */
export function backoffDelay(failures: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  const jittered = base / 2 + (random() * base) / 2;
  return Math.max(jittered, retryAfterMs ?? 0);
}
