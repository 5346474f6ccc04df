/**
 * One refresh of one credential, as the store sees it:
 *   take the lease → re-read the newest record → respect another replica's live in-flight mark →
 *   mark the refresh token "in flight" (owner, expiry) → call the token endpoint → compare-and-set the
 *   new record (generation + 1) → release the lease.
 * It talks to the store and the token endpoint only, and returns what happened; the token manager owns
 * the in-memory state and decides what to do with the result. Time comes from `deps.clock`. What depends
 * on the grant (which grants to send, whether a refresh token is at stake and marked) is `deps.grant`'s.
 */
import type { AuthConfig } from '../config/types.js';
import { StoreError, TokenEndpointError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import type { Clock } from './clock.js';
import { commitRecord } from './commit-record.js';
import { fingerprint } from './fingerprint.js';
import type { GrantStrategy } from './grant.js';
import { firstTokenHint } from '../operator-hints.js';
import type { TokenClient, TokenGrant } from './providers/oauth2-client.js';
import { takeLease, type Lease } from './refresh-lease.js';
import { deadRecord, nextRecord, usableAccessToken, withoutMark } from './token-record.js';

export interface RefreshDeps {
  readonly name: string;
  readonly auth: AuthConfig;
  readonly store: TokenStore;
  readonly client: TokenClient;
  readonly owner: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly grant: GrantStrategy;
}

export type RefreshResult =
  /** Another writer stored a newer record (before or during our attempt), or a dead verdict: use it. */
  | { readonly kind: 'adopted'; readonly record: TokenRecord | undefined }
  /**
   * New tokens, stored; or, with `unstored`, held only here because the store did not take them: the
   * caller must keep writing them back (holding `unstored.lease`) before anything else happens.
   */
  | {
      readonly kind: 'refreshed';
      readonly record: TokenRecord;
      readonly grant: TokenGrant;
      readonly latencyMs: number;
      readonly unstored?: { readonly expectedGeneration: number; readonly lease: Lease | undefined };
    }
  /** The token endpoint could not be used (outage, firewall, timeout): keep the current token and retry later. */
  | { readonly kind: 'transient'; readonly failure: TokenEndpointError; readonly latencyMs: number }
  /** The token endpoint gave its verdict on the credential; `record` is the dead record now stored. */
  | { readonly kind: 'dead'; readonly record: TokenRecord; readonly failure: TokenEndpointError; readonly latencyMs: number }
  /** Nothing to refresh with: no refresh token (or it expired) and no password grant. */
  | { readonly kind: 'needs_credentials'; readonly message: string }
  /** Another replica is refreshing (it holds the lease, or its in-flight mark is live): wait for its record. */
  | { readonly kind: 'blocked'; readonly reason: string; readonly retryAt: number };

export interface RefreshOptions {
  /** The new token's predecessor was rejected and a replay will test the new one (see TokenRecord.fetchedAfterRejection). */
  readonly afterRejection: boolean;
}

/** While blocked by another replica, look at the store again at least this often (announcements come sooner). */
const BLOCKED_RECHECK_MS = 2_000;

export async function refreshUnderLease(
  deps: RefreshDeps,
  known: TokenRecord | undefined,
  options: RefreshOptions,
): Promise<RefreshResult> {
  const knownGeneration = known?.generation ?? 0;
  let lease: Lease | undefined;
  try {
    lease = await takeLease({
      store: deps.store,
      key: deps.name,
      owner: deps.owner,
      ttlMs: deps.auth.lockLeaseMs,
      clock: deps.clock,
      onLost: (why) => deps.log.warn({ event: 'refresh_lease_lost' }, `refresh lease for ${deps.name} lost: ${why}`),
    });
  } catch (error) {
    // The store is unreachable. One-time refresh tokens must not be refreshed without the lock (another
    // replica could spend the same token); the upstream's policy says whether this one may.
    if (!deps.grant.refreshWithoutLock) throw new StoreUnavailableError(error);
    const why = deps.grant.spendsRefreshTokens ? 'refreshWithoutLock: true' : 'grant client_credentials: nothing to spend twice';
    deps.log.warn({ event: 'refresh_without_lock', err: describe(error) }, `token store unreachable; refreshing without the lock (${why})`);
    return refreshFrom(deps, known, undefined, options);
  }
  if (!lease) {
    const stored = await deps.store.read(deps.name);
    if (stored && (stored.generation > knownGeneration || (stored.dead && deps.grant.verdictHolds(stored))))
      return { kind: 'adopted', record: stored };
    return {
      kind: 'blocked',
      reason: 'another replica is refreshing this credential',
      retryAt: deps.clock.now() + Math.min(BLOCKED_RECHECK_MS, deps.auth.lockLeaseMs / 3),
    };
  }
  let handedOver = false;
  try {
    // Refresh from the newest stored record: another process may have refreshed already.
    const stored = await restoreLostRecord(deps, known, await deps.store.read(deps.name));
    if (stored && stored.generation > knownGeneration && usableAccessToken(stored)) return { kind: 'adopted', record: stored };
    // Another replica's verdict on this credential (a dead record carries no token) stops this one too.
    if (stored?.dead && deps.grant.verdictHolds(stored)) return { kind: 'adopted', record: stored };
    const result = await refreshFrom(deps, stored, lease, options);
    handedOver = result.kind === 'refreshed' && result.unstored !== undefined;
    return result;
  } finally {
    // A record that is not stored yet keeps the lease: its holder renews it until the write lands.
    if (!handedOver) await lease.release();
  }
}

/**
 * `stored` is what the store returned. When it has no record, or an older one, although this replica holds
 * a newer one, the store lost data (a Redis without persistence restarted, a failover to a lagging replica,
 * an eviction) and perhaps another replica already wrote back the stale copy it held. Generations only
 * grow, so the newest copy holds the only unspent refresh token, and a rotated refresh token must never be
 * lost: it goes back first, with its own generation, and work continues from it.
 */
export async function restoreLostRecord(
  deps: Pick<RefreshDeps, 'name' | 'store' | 'log'>,
  known: TokenRecord | undefined,
  stored: TokenRecord | undefined,
): Promise<TokenRecord | undefined> {
  if (!known || (stored && stored.generation >= known.generation)) return stored;
  if ((await deps.store.compareAndSet(deps.name, stored?.generation ?? 0, known)) !== 'applied') return deps.store.read(deps.name);
  deps.log.warn(
    { event: 'record_restored', generation: known.generation, ...(stored ? { replacedGeneration: stored.generation } : {}) },
    stored
      ? 'the token store held an older record than this replica; wrote back the newer one held in memory'
      : 'the token store had lost the record; wrote back the one held in memory',
  );
  return known;
}

/** The store could not be reached to take the refresh lock, and this upstream may not refresh without it. */
export class StoreUnavailableError extends StoreError {
  constructor(cause: unknown) {
    super(
      `token store unreachable (${describe(cause)}); not refreshing without the lock because this upstream's refresh tokens may be one-time (set auth.refreshWithoutLock: true to allow it)`,
      { cause, retryable: true },
    );
    this.name = 'StoreUnavailableError';
  }
}

/** When a mark stops blocking other replicas. */
export function markExpiresAt(mark: NonNullable<TokenRecord['refreshInFlight']>, auth: Pick<AuthConfig, 'inFlightMarkTtlMs'>): number {
  return mark.expiresAt ?? mark.since + auth.inFlightMarkTtlMs;
}

async function refreshFrom(
  deps: RefreshDeps,
  record: TokenRecord | undefined,
  lease: Lease | undefined,
  options: RefreshOptions,
): Promise<RefreshResult> {
  const now = deps.clock.now();
  const grants = deps.grant.grantsFor(record, now);
  if (grants.length === 0) {
    const fix = firstTokenHint(deps.name, deps.auth);
    const message = record?.refreshToken ? `the refresh token has expired: ${fix}` : `no refresh token yet: ${fix}`;
    return { kind: 'needs_credentials', message };
  }
  // Only a refresh token can be spent: with client_credentials a mark (left from before) guards nothing.
  const mark = deps.grant.spendsRefreshTokens ? record?.refreshInFlight : undefined;
  if (mark && mark.owner !== deps.owner && now < markExpiresAt(mark, deps.auth)) {
    // Its owner may have spent the token and be about to store the result (its link to the store may be
    // stalled): sending the token again would be a second use of a one-time token.
    const until = markExpiresAt(mark, deps.auth);
    return {
      kind: 'blocked',
      reason: `replica ${mark.owner} sent this refresh token at ${new Date(mark.since).toISOString()} and has not stored the result yet; it is not sent again before ${new Date(until).toISOString()}`,
      retryAt: Math.min(until, now + BLOCKED_RECHECK_MS),
    };
  }
  let lastFailure: TokenEndpointError | undefined;
  let latencyMs = 0;
  for (const [index, grant] of grants.entries()) {
    if (grant.type === 'refresh_token' && record) {
      // An expired mark of a vanished owner, or our own from an attempt that got no answer: the token is
      // probably spent, and this is the one reuse that finds out.
      if (mark) warnUnfinished(deps, mark);
      if (lease && !lease.held()) return leaseLost(deps);
      if (!(await markInFlight(deps, record, grant.refreshToken).catch((error: unknown) => markFailed(deps, error)))) {
        return { kind: 'adopted', record: await deps.store.read(deps.name) };
      }
      if (lease && !lease.held()) {
        await clearMark(deps, record);
        return leaseLost(deps);
      }
    }
    const startedAt = deps.clock.now();
    let tokens;
    try {
      tokens = await deps.client.requestToken(grant);
    } catch (error) {
      lastFailure =
        error instanceof TokenEndpointError ? error : new TokenEndpointError('transient', String(error), { grantMayBeSpent: true });
      latencyMs = deps.clock.now() - startedAt;
      if (lastFailure.kind === 'transient') {
        // A firewall page, a redirect or a rate limit came before the provider: the token was not spent, so
        // the mark goes. After a timeout, a reset or a gateway 5xx nobody knows: the mark stays and blocks
        // the other replicas until it expires.
        if (record && grant.type === 'refresh_token' && !lastFailure.grantMayBeSpent) await clearMark(deps, record);
        return { kind: 'transient', failure: lastFailure, latencyMs };
      }
      const following = grants[index + 1];
      // The password grant (Apiax) can revive a credential whose refresh token died.
      if (following) {
        deps.log.warn(
          { event: 'refresh_rejected', providerCode: lastFailure.providerCode, httpStatus: lastFailure.httpStatus },
          `${lastFailure.message}; trying the ${following.type} grant`,
        );
      }
      continue;
    }
    latencyMs = deps.clock.now() - startedAt;
    const next = deps.grant.stamp(nextRecord(record, tokens, grant, startedAt, deps.owner, { afterRejection: options.afterRejection }));
    return commitNew(deps, record?.generation ?? 0, next, grant, latencyMs, lease);
  }
  const failure = lastFailure as TokenEndpointError;
  const dead = deps.grant.stamp(deadRecord(record, deps.grant.deathReason(deps.name, failure, mark), deps.owner, deps.clock.now()));
  await deps.store.compareAndSet(deps.name, record?.generation ?? 0, dead).catch(() => undefined);
  return { kind: 'dead', record: dead, failure, latencyMs };
}

function leaseLost(deps: RefreshDeps): RefreshResult {
  return {
    kind: 'blocked',
    reason: 'the refresh lease was lost before the refresh token was sent',
    retryAt: deps.clock.now() + Math.min(BLOCKED_RECHECK_MS, deps.auth.lockLeaseMs / 3),
  };
}

/** Stores the new record before it is used; a failed write never delays the new token (the caller retries it). */
async function commitNew(
  deps: RefreshDeps,
  expectedGeneration: number,
  next: TokenRecord,
  grant: TokenGrant,
  latencyMs: number,
  lease: Lease | undefined,
): Promise<RefreshResult> {
  try {
    const outcome = await commitRecord(deps, expectedGeneration, next);
    if (outcome.kind === 'superseded') {
      deps.log.error({ event: 'commit_stale', generation: next.generation }, 'a newer record was stored while refreshing; adopting it');
      return { kind: 'adopted', record: outcome.stored };
    }
    return { kind: 'refreshed', record: outcome.record, grant, latencyMs };
  } catch (error) {
    deps.log.error(
      { event: 'store_write_failed', err: describe(error) },
      'could not store the new token record; serving it from memory and retrying the write',
    );
    return { kind: 'refreshed', record: next, grant, latencyMs, unstored: { expectedGeneration, lease } };
  }
}

/** Notes in the store that this refresh token is about to be sent, by whom and until when nobody else may send it. */
async function markInFlight(deps: RefreshDeps, record: TokenRecord, refreshToken: string): Promise<boolean> {
  const since = deps.clock.now();
  const marked: TokenRecord = {
    ...record,
    refreshInFlight: {
      since,
      expiresAt: since + deps.auth.inFlightMarkTtlMs,
      refreshTokenFingerprint: fingerprint(refreshToken) ?? '',
      owner: deps.owner,
    },
  };
  // 'stale': someone wrote a newer record between our read and the mark; use theirs, send nothing.
  return (await deps.store.compareAndSet(deps.name, record.generation, marked)) === 'applied';
}

/** Without the store the mark cannot be written: go on only where refreshing without the lock is allowed. */
function markFailed(deps: RefreshDeps, error: unknown): true {
  if (!deps.grant.refreshWithoutLock) throw error;
  return true;
}

async function clearMark(deps: RefreshDeps, record: TokenRecord): Promise<void> {
  await deps.store.compareAndSet(deps.name, record.generation, withoutMark(record)).catch(() => undefined);
}

function warnUnfinished(deps: RefreshDeps, mark: NonNullable<TokenRecord['refreshInFlight']>): void {
  deps.log.warn(
    {
      event: 'refresh_in_flight_found',
      since: new Date(mark.since).toISOString(),
      by: mark.owner,
      refreshTokenFingerprint: mark.refreshTokenFingerprint,
    },
    'an earlier refresh with this refresh token did not finish; it may already be spent',
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
