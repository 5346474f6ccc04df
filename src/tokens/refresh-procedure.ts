/**
 * One refresh of one credential, as the store sees it:
 *   take the refresh lock → re-read the newest record → mark its refresh token "in flight" →
 *   call the token endpoint → compare-and-set the new record (generation + 1) → release the lock.
 * It talks to the store and the token endpoint only, and returns what happened; the token manager
 * owns the in-memory state and decides what to do with the result.
 */
import type { AuthConfig } from '../config/types.js';
import { TokenEndpointError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenClient, TokenGrant } from './providers/oauth2-client.js';
import { deadRecord, nextRecord, usableAccessToken } from './token-record.js';

export interface RefreshDeps {
  readonly name: string;
  readonly auth: AuthConfig;
  readonly store: TokenStore;
  readonly client: TokenClient;
  readonly owner: string;
  readonly log: Logger;
  /** Called for each failed write of a new record (it is retried until it lands). */
  onStoreWriteFailed(): void;
  /** A record that failed to write has landed after all. */
  onStoreWriteRecovered(): void;
  /** A retried write found a newer record stored meanwhile: the caller must use that one, not its own. */
  onWriteSuperseded(): void;
  isStopped(): boolean;
}

export type RefreshResult =
  /** Another writer stored a newer record (before or during our attempt): use it. */
  | { readonly kind: 'adopted'; readonly record: TokenRecord | undefined }
  /** New tokens, stored (or, if `unsaved`, served from memory while the write is retried). */
  | { readonly kind: 'refreshed'; readonly record: TokenRecord; readonly grant: TokenGrant; readonly latencyMs: number; readonly unsaved: boolean }
  /** Keep the current token and retry later. */
  | { readonly kind: 'transient'; readonly failure: TokenEndpointError; readonly latencyMs: number }
  /** The token endpoint rejected the credential for good; `record` is the dead record now stored. */
  | { readonly kind: 'dead'; readonly record: TokenRecord; readonly failure: TokenEndpointError; readonly latencyMs: number }
  /** Nothing to refresh with: no refresh token (or it expired) and no password grant. */
  | { readonly kind: 'needs_credentials'; readonly message: string }
  /** Another replica held the lock for longer than a request may wait. */
  | { readonly kind: 'lock_timeout' };

export async function refreshUnderLock(deps: RefreshDeps, known: TokenRecord | undefined): Promise<RefreshResult> {
  const knownGeneration = known?.generation ?? 0;
  const lockTtlMs = deps.auth.tokenRequestTimeoutMs * 2 + 5000; // outlives the token request it guards
  let locked: 'acquired' | RefreshResult;
  try {
    locked = await acquireLockOrNewer(deps, knownGeneration, lockTtlMs);
  } catch (error) {
    // The store is unreachable. One-time refresh tokens must not be refreshed without the lock (another
    // replica could spend the same token); the upstream's policy says whether this one may.
    if (!deps.auth.refreshWithoutLock) throw new StoreUnavailableError(error);
    deps.log.warn({ event: 'refresh_without_lock', err: describe(error) }, 'token store unreachable; refreshing without the lock (refreshWithoutLock: true)');
    return refreshFrom(deps, known, lockTtlMs);
  }
  if (locked !== 'acquired') return locked;
  const renewal = setInterval(() => void deps.store.renewLock(deps.name, deps.owner, lockTtlMs).catch(() => undefined), lockTtlMs / 3);
  renewal.unref();
  let result: RefreshResult | undefined;
  try {
    // Refresh from the newest stored record: another process may have refreshed already.
    const stored = await restoreLostRecord(deps, known, await deps.store.read(deps.name));
    if (stored && stored.generation > knownGeneration && usableAccessToken(stored)) return { kind: 'adopted', record: stored };
    // Another replica found the refresh token rejected (a dead verdict carries no token): sending it again
    // would be one more reuse of a spent token, which can kill a Keycloak session that was still alive.
    if (stored?.dead) return { kind: 'adopted', record: stored };
    result = await refreshFrom(deps, stored, lockTtlMs);
    return result;
  } finally {
    clearInterval(renewal);
    // A record that is not stored yet keeps the lock: released now, another replica could refresh from the
    // old record with the refresh token this one has just spent. retryCommit releases it once the write lands.
    if (!(result?.kind === 'refreshed' && result.unsaved)) await deps.store.releaseLock(deps.name, deps.owner).catch(() => undefined);
  }
}

async function acquireLockOrNewer(deps: RefreshDeps, knownGeneration: number, ttlMs: number): Promise<'acquired' | RefreshResult> {
  const deadline = Date.now() + deps.auth.tokenWaitTimeoutMs;
  while (!(await deps.store.acquireLock(deps.name, deps.owner, ttlMs))) {
    // Another replica is refreshing: wait for its new record (announced by the store) rather than refresh
    // ourselves; the poll interval only bounds the wait if the announcement is lost.
    await changeOrTimeout(deps, Math.min(LOCK_POLL_MS, Math.max(0, deadline - Date.now())));
    const stored = await deps.store.read(deps.name);
    if (stored && (stored.generation > knownGeneration || stored.dead)) return { kind: 'adopted', record: stored };
    if (Date.now() > deadline) return { kind: 'lock_timeout' };
  }
  return 'acquired';
}

/**
 * `stored` is what the store returned. When it has no record, or an older one, although this replica holds
 * a newer one, the store lost data (a Redis without persistence restarted, a failover to a lagging replica,
 * an eviction) and perhaps another replica already wrote back the stale copy it held. Generations only
 * grow, so the newest copy holds the only unspent refresh token, and a rotated refresh token must never be
 * lost (issue 3 §3): it goes back first, with its own generation, and work continues from it.
 */
export async function restoreLostRecord(deps: RefreshDeps, known: TokenRecord | undefined, stored: TokenRecord | undefined): Promise<TokenRecord | undefined> {
  if (!known || (stored && stored.generation >= known.generation)) return stored;
  if ((await deps.store.compareAndSet(deps.name, stored?.generation ?? 0, known)) !== 'applied') return deps.store.read(deps.name);
  deps.log.warn(
    { event: 'record_restored', generation: known.generation, ...(stored ? { replacedGeneration: stored.generation } : {}) },
    stored ? 'the token store held an older record than this replica; wrote back the newer one held in memory' : 'the token store had lost the record; wrote back the one held in memory',
  );
  return known;
}

/** How often a replica waiting for another's refresh re-checks the store when no change is announced. */
const LOCK_POLL_MS = 500;

function changeOrTimeout(deps: RefreshDeps, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const unsubscribe = deps.store.subscribe((key) => {
      if (key === deps.name) done();
    });
  });
}

/** The store could not be reached to take the refresh lock, and this upstream may not refresh without it. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`token store unreachable (${describe(cause)}); not refreshing without the lock because this upstream's refresh tokens may be one-time (set auth.refreshWithoutLock: true to allow it)`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

async function refreshFrom(deps: RefreshDeps, record: TokenRecord | undefined, lockTtlMs: number): Promise<RefreshResult> {
  const grants = grantsFor(record, deps.auth);
  if (grants.length === 0) {
    const fix = firstTokenHint(deps.name, deps.auth);
    const message = record?.refreshToken ? `the refresh token has expired; ${fix}` : `no refresh token yet; ${fix}`;
    return { kind: 'needs_credentials', message };
  }
  // A mark left by an earlier attempt that never finished: that attempt may have spent the token.
  const unfinished = record?.refreshInFlight;
  let lastFailure: TokenEndpointError | undefined;
  let latencyMs = 0;
  for (const [index, grant] of grants.entries()) {
    if (grant.type === 'refresh_token' && record) {
      if (unfinished) warnUnfinished(deps, unfinished);
      if (!(await markInFlight(deps, record, grant.refreshToken).catch((error: unknown) => markFailed(deps, error)))) {
        return { kind: 'adopted', record: await deps.store.read(deps.name) };
      }
    }
    const startedAt = Date.now();
    try {
      const tokens = await deps.client.requestToken(grant);
      const next = nextRecord(record, tokens, grant, startedAt, deps.owner);
      return await commit(deps, record?.generation ?? 0, next, grant, Date.now() - startedAt, lockTtlMs);
    } catch (error) {
      lastFailure = error instanceof TokenEndpointError ? error : new TokenEndpointError('transient', String(error));
      latencyMs = Date.now() - startedAt;
      if (lastFailure.kind === 'transient') {
        // The endpoint answered (5xx, 429): it did not take the refresh token, so the mark can go.
        // After a timeout or a network error nobody knows; the mark stays as a warning for the next attempt.
        if (record && grant.type === 'refresh_token' && lastFailure.httpStatus !== undefined) await clearMark(deps, record);
        return { kind: 'transient', failure: lastFailure, latencyMs };
      }
      const following = grants[index + 1];
      // The password grant (Apiax) can revive a credential whose refresh token died.
      if (following) {
        deps.log.warn({ event: 'refresh_rejected', providerCode: lastFailure.providerCode, httpStatus: lastFailure.httpStatus }, `${lastFailure.message}; trying the ${following.type} grant`);
      }
    }
  }
  const failure = lastFailure as TokenEndpointError;
  const dead = deadRecord(record, deathReason(deps.name, failure, unfinished), deps.owner);
  await deps.store.compareAndSet(deps.name, record?.generation ?? 0, dead).catch(() => undefined);
  return { kind: 'dead', record: dead, failure, latencyMs };
}

/** The commands that give an upstream its first (or a new) refresh token, for the operator. */
function firstTokenHint(name: string, auth: AuthConfig): string {
  const env = `${name.toUpperCase().replace(/-/g, '_')}_REFRESH_TOKEN`;
  const login = auth.preset === 'collaborate' || auth.preset === 'v3' ? `, or oauth-sidecar login ${name}` : auth.preset === 'apiax' ? ', or set auth.username and auth.password' : '';
  return `export ${env}=… (if proxy.yaml references it) and restart, or printf '%s' "$TOKEN" | oauth-sidecar seed ${name}${login}`;
}

function grantsFor(record: TokenRecord | undefined, auth: AuthConfig): TokenGrant[] {
  const grants: TokenGrant[] = [];
  const refreshToken = record?.refreshToken;
  const refreshExpired = record?.refreshTokenExpiresAt !== undefined && record.refreshTokenExpiresAt <= Date.now();
  if (refreshToken && !refreshExpired) grants.push({ type: 'refresh_token', refreshToken });
  if (auth.username && auth.password) grants.push({ type: 'password', username: auth.username, password: auth.password.reveal() });
  return grants;
}

/** Notes in the store that this refresh token is about to be sent, so nobody mistakes it for unspent later. */
async function markInFlight(deps: RefreshDeps, record: TokenRecord, refreshToken: string): Promise<boolean> {
  const marked: TokenRecord = {
    ...record,
    refreshInFlight: { since: Date.now(), refreshTokenFingerprint: fingerprint(refreshToken) ?? '', owner: deps.owner },
  };
  // 'stale': someone wrote a newer record between our read and the mark; use theirs, send nothing.
  return (await deps.store.compareAndSet(deps.name, record.generation, marked)) === 'applied';
}

/** Without the store the mark cannot be written: go on only where refreshing without the lock is allowed. */
function markFailed(deps: RefreshDeps, error: unknown): true {
  if (!deps.auth.refreshWithoutLock) throw error;
  return true;
}

async function clearMark(deps: RefreshDeps, record: TokenRecord): Promise<void> {
  const { refreshInFlight: _mark, ...unmarked } = record;
  await deps.store.compareAndSet(deps.name, record.generation, unmarked).catch(() => undefined);
}

/** Stores the new record before it is used; a failed write is retried but never delays the new token. */
async function commit(deps: RefreshDeps, expectedGeneration: number, next: TokenRecord, grant: TokenGrant, latencyMs: number, lockTtlMs: number): Promise<RefreshResult> {
  try {
    if ((await deps.store.compareAndSet(deps.name, expectedGeneration, next)) === 'stale') {
      // We lost the lock while the token request ran and another writer got in first: its record wins.
      deps.log.error({ event: 'commit_stale', generation: next.generation }, 'a newer record was stored while refreshing; adopting it');
      return { kind: 'adopted', record: await deps.store.read(deps.name) };
    }
    return { kind: 'refreshed', record: next, grant, latencyMs, unsaved: false };
  } catch (error) {
    deps.onStoreWriteFailed();
    deps.log.error({ event: 'store_write_failed', err: describe(error) }, 'could not store the new token record; serving it from memory and retrying the write');
    retryCommit(deps, expectedGeneration, next, 1, lockTtlMs);
    return { kind: 'refreshed', record: next, grant, latencyMs, unsaved: true };
  }
}

/**
 * Retries storing a record that only this replica holds, quickly (its refresh token is the only unspent
 * one), re-taking the lock before each attempt so that no other replica refreshes meanwhile, and releasing
 * it once the write has landed or been refused by the fence.
 */
function retryCommit(deps: RefreshDeps, expectedGeneration: number, next: TokenRecord, attempt: number, lockTtlMs: number): void {
  const timer = setTimeout(() => {
    void (async () => {
      try {
        await deps.store.acquireLock(deps.name, deps.owner, lockTtlMs).catch(() => false);
        const result = await deps.store.compareAndSet(deps.name, expectedGeneration, next);
        await deps.store.releaseLock(deps.name, deps.owner).catch(() => undefined);
        deps.onStoreWriteRecovered();
        if (result === 'applied') return deps.log.info({ event: 'store_write_recovered', generation: next.generation }, 'stored the token record after retrying');
        // Another replica wrote first (our lock had expired, e.g. we were frozen): the fence refused our
        // record, and serving its tokens on would mean a token pair no other replica knows about.
        deps.log.error({ event: 'commit_stale', generation: next.generation }, 'a newer record was stored while the write was retried; adopting it');
        deps.onWriteSuperseded();
      } catch {
        deps.onStoreWriteFailed();
        if (!deps.isStopped()) retryCommit(deps, expectedGeneration, next, attempt + 1, lockTtlMs);
      }
    })();
  }, Math.min(COMMIT_RETRY_MAX_MS, 125 * 2 ** attempt));
  timer.unref();
}

/** Retried writes of an unsaved record wait 250 ms, 500 ms, 1 s, then every 2 s. */
const COMMIT_RETRY_MAX_MS = 2_000;

function warnUnfinished(deps: RefreshDeps, mark: NonNullable<TokenRecord['refreshInFlight']>): void {
  deps.log.warn(
    { event: 'refresh_in_flight_found', since: new Date(mark.since).toISOString(), by: mark.owner, refreshTokenFingerprint: mark.refreshTokenFingerprint },
    'an earlier refresh with this refresh token did not finish; it may already be spent',
  );
}

function deathReason(name: string, failure: TokenEndpointError, unfinished: TokenRecord['refreshInFlight']): string {
  const what = failure.kind === 'client_rejected' ? 'the client credentials were rejected' : 'the refresh token was rejected';
  const context = unfinished
    ? `; an earlier refresh with this refresh token (${unfinished.owner}, ${new Date(unfinished.since).toISOString()}) did not finish and probably spent it`
    : '';
  return `${what}: ${failure.message}${context}. Fix: seed a new refresh token (oauth-sidecar seed ${name}, or auth.refreshToken and restart)`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
