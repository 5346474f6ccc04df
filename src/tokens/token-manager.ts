/**
 * Keeps one upstream's current access token in memory and refreshes it: early on the clock, and on
 * demand when the upstream rejects it. The request path calls `current()`, which is synchronous and
 * never touches the store or the network; only refreshes do, one at a time (single-flight), under the
 * store's refresh lease, and always from the newest record in the store.
 *
 * The lifecycle is one `TokenState` (see token-state.ts for the transitions); time comes from the
 * injected clock, so every rule here is unit-tested with fake time.
 */
import type { AuthConfig, UpstreamConfig } from '../config/types.js';
import { ProxyError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Credential, CurrentToken, ReplayReport } from './credential.js';
import { RefreshHistory } from './refresh-history.js';
import type { TokenMetrics } from './token-metrics.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { retryCommit } from './commit-retry.js';
import type { TokenClient } from './providers/oauth2-client.js';
import { StoreUnavailableError, refreshUnderLease, restoreLostRecord, type RefreshDeps, type RefreshResult } from './refresh-procedure.js';
import { backoffDelay, refreshAt } from './refresh-schedule.js';
import { decideReplay, isSuspect, type ReplayDecision } from './replay-policy.js';
import { ChangeSignal } from './change-signal.js';
import { FirstRead } from './first-read.js';
import { grantStrategy } from './grant.js';
import { logDead, logRefreshed, logTransient, type RefreshOutcome } from './refresh-log.js';
import { usableAccessToken } from './token-record.js';
import { canMove, type TokenState } from './token-state.js';
import type { TokenStatus } from './token-status.js';
import { describeTokenState } from './describe-token-state.js';

export type { ReplayDecision } from './replay-policy.js';
export type { CurrentToken } from './credential.js';

export type RefreshReason = 'startup' | 'scheduled' | 'expired' | 'rejected' | 'retry';

export interface TokenManagerOptions {
  upstream: UpstreamConfig;
  store: TokenStore;
  client: TokenClient;
  logger: Logger;
  metrics: TokenMetrics;
  /** This replica's id: lease owner, mark owner and record writer. */
  owner: string;
  clock?: Clock;
  /** Jitter source for the backoff (tests pin it). */
  random?: () => number;
}

/** Why no token can be had right now, for the 503 a waiting request gets. */
interface Unavailable {
  readonly code: Extract<ErrorCode, 'TOKEN_ENDPOINT_UNAVAILABLE' | 'REFRESH_PENDING' | 'NO_USABLE_TOKEN'>;
  readonly reason: string;
}

export class TokenManager implements Credential {
  readonly #upstream: UpstreamConfig;
  readonly #auth: AuthConfig;
  readonly #store: TokenStore;
  readonly #log: Logger;
  readonly #metrics: TokenMetrics;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #deps: RefreshDeps;
  readonly #history: RefreshHistory;

  #state: TokenState = 'loading';
  #record: TokenRecord | undefined;
  #token: CurrentToken | undefined;
  #refreshing: Promise<void> | undefined;
  #timer: Timer | undefined;
  /** Consecutive failed refreshes (token endpoint or store), for the backoff. */
  #failures = 0;
  /** With state `unavailable`: when the next attempt is due. */
  #retryAt = 0;
  #unavailable: Unavailable | undefined;
  #needsCredentials: string | undefined;
  /** A replay with this generation was accepted here: its later rejections are about the token again. */
  #trustedGeneration = -1;
  /** The generation whose skipped replays were last logged, so the log says why once per generation. */
  #skipLoggedGeneration = -1;
  /** A pair only this replica holds, being written back: nothing else happens until it lands. */
  #unstored: { cancel(): void } | undefined;
  readonly #firstRead: FirstRead;
  #unsubscribe: (() => void) | undefined;
  /** Notes being written to the stored record (see replayEnded). */
  readonly #notes = new Set<Promise<void>>();
  /** Requests waiting for a token, woken on every change. */
  readonly #changes: ChangeSignal;

  constructor(options: TokenManagerOptions) {
    this.#upstream = options.upstream;
    this.#auth = options.upstream.auth;
    this.#store = options.store;
    this.#log = options.logger.child({ upstream: options.upstream.name });
    this.#metrics = options.metrics;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#history = new RefreshHistory(options.upstream.name, options.metrics, this.#clock);
    this.#deps = {
      name: this.name,
      auth: this.#auth,
      store: this.#store,
      client: options.client,
      owner: options.owner,
      log: this.#log,
      clock: this.#clock,
      grant: grantStrategy(this.#auth),
    };
    this.#changes = new ChangeSignal(this.#clock);
    this.#firstRead = new FirstRead({
      deps: this.#deps,
      seed: this.#deps.grant.seed,
      random: this.#random,
      onRead: (record) => {
        this.#settle(record);
        this.#schedule();
      },
      onProblem: () => this.#notify(),
    });
  }

  get name(): string {
    return this.#upstream.name;
  }

  get state(): TokenState {
    return this.#state;
  }

  /**
   * Loads (or seeds) the stored record and starts refreshing. A token endpoint that is down does not fail
   * this, nor does a store that is unreachable for now (the upstream stays unready and the load is retried);
   * a store that answers wrongly (a corrupt file, a record that does not decrypt) does.
   */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe((key) => {
      if (key !== this.name && key !== '*') return;
      if (this.#state === 'loading') void this.#firstRead.run();
      // Same-generation announcements matter too: a mark, or a token another replica found accepted.
      else void this.#reload();
    });
    if (this.#auth.missing.length > 0) {
      this.#needsCredentials = `missing ${this.#auth.missing.join(' and ')}`;
      this.#log.warn(
        { event: 'needs_credentials', missing: this.#auth.missing },
        `upstream ${this.name} needs credentials: ${this.#needsCredentials}`,
      );
    }
    await this.#firstRead.run({ atStart: true });
  }

  stop(): void {
    this.#moveTo('stopped');
    this.#timer?.cancel();
    this.#firstRead.stop();
    this.#unstored?.cancel();
    this.#unsubscribe?.();
  }

  // --- the request path ----------------------------------------------------------------------------

  /** The token to attach, if one is usable right now. Synchronous: this is the request path. */
  current(): CurrentToken | undefined {
    const token = this.#token;
    return token !== undefined && token.expiresAt > this.#clock.now() ? token : undefined;
  }

  /** A usable token, waiting at most tokenWaitTimeoutMs for a refresh. Throws a 503 ProxyError with Retry-After. */
  async acquire(): Promise<CurrentToken> {
    const ready = this.current();
    if (ready) return ready;
    if (this.#state === 'valid' || this.#state === 'empty') void this.refresh('expired');
    return this.#waitForToken(() => true);
  }

  /** Decided when the upstream rejects a token, before its response is thrown away for a replay. */
  replayDecision(rejectedGeneration: number): ReplayDecision {
    const now = this.#clock.now();
    const snapshot = {
      rejectedGeneration,
      record: this.#record,
      usableGeneration: this.current()?.generation,
      unusable: this.#state === 'dead' || this.#state === 'needs_credentials' || this.#needsCredentials !== undefined,
      backingOff: this.#state === 'unavailable' && this.#unavailable?.code !== 'REFRESH_PENDING' && now < this.#retryAt,
      trustedGeneration: this.#trustedGeneration,
      now,
    };
    const decision = decideReplay(snapshot);
    if (decision === 'none' && isSuspect(snapshot) && this.#skipLoggedGeneration !== rejectedGeneration) {
      this.#skipLoggedGeneration = rejectedGeneration;
      this.#log.info(
        { event: 'replay_skipped', generation: rejectedGeneration },
        `upstream ${this.name} rejected generation ${rejectedGeneration}, which was fetched because its predecessor was rejected: taking the rejection as about the request, not the token (no refresh on rejection for a minute)`,
      );
    }
    return decision;
  }

  /**
   * A token newer than the rejected one, refreshing if needed; undefined when the rejection stands. Throws a
   * 503 ProxyError when no newer token came within tokenWaitTimeoutMs, never handing back a stale rejection.
   */
  async replacementFor(rejectedGeneration: number): Promise<CurrentToken | undefined> {
    const decision = this.replayDecision(rejectedGeneration);
    if (decision === 'none') return undefined;
    if (decision === 'refresh') void this.refresh('rejected', { afterRejection: true });
    return this.#waitForToken((token) => token.generation > rejectedGeneration);
  }

  onRejection(rejectedGeneration: number, replayable: boolean): boolean {
    if (replayable) return this.replayDecision(rejectedGeneration) !== 'none';
    // The body cannot be sent twice, but the next request should find a fresh token. No replay will test
    // that token, so it is not marked as fetched after a rejection.
    if (this.replayDecision(rejectedGeneration) === 'refresh') void this.refresh('rejected');
    return false;
  }

  /**
   * How a replay went. Accepted: the rejection was about the token after all, so
   * the record stops saying otherwise, for every replica and after a restart (a write the request does
   * not wait for, only after rejection-triggered refreshes).
   */
  replayEnded(report: ReplayReport): void {
    if (report === 'no_new_token') return this.#history.replayEnded('no_new_token');
    const { generation, accepted } = report;
    this.#history.replayEnded(accepted ? 'accepted' : 'rejected');
    if (!accepted) return;
    this.#trustedGeneration = generation;
    const record = this.#record;
    if (record?.generation !== generation || !record.fetchedAfterRejection) return;
    // A pair only this replica holds is never written as an annotation: at its generation the store may
    // hold another writer's record, which a same-generation write would replace.
    if (this.#unstored) return;
    const clearing = this.#clearRejectionMark(record).finally(() => this.#notes.delete(clearing));
    this.#notes.add(clearing);
  }

  /** Store writes under way that nobody waits for (notes on the record); `stop` callers let them land. */
  async settled(): Promise<void> {
    await Promise.all([...this.#notes]);
  }

  /** Removes the mark from the stored record, if it still is the one this replica holds (same generation and tokens). */
  async #clearRejectionMark(record: TokenRecord): Promise<void> {
    try {
      const stored = await this.#store.read(this.name);
      if (stored?.generation !== record.generation || stored.accessToken !== record.accessToken || !stored.fetchedAfterRejection) return;
      const { fetchedAfterRejection: _mark, ...trusted } = stored;
      if ((await this.#store.compareAndSet(this.name, stored.generation, trusted)) === 'applied' && this.#record === record)
        this.#adopt(trusted);
    } catch {
      // Only a hint for the other replicas; this one already trusts the token.
    }
  }

  status(): TokenStatus {
    return describeTokenState(
      {
        upstream: this.name,
        grant: this.#deps.grant.name,
        record: this.#record,
        token: this.#token,
        needsCredentials: this.#needsCredentials,
        storeProblem: this.#state === 'loading' ? this.#firstRead.problem : undefined,
        unavailable: this.#state === 'unavailable' ? this.#unavailable?.reason : undefined,
        refreshing: this.#state === 'refreshing',
        history: this.#history,
        storeWritePending: this.#unstored !== undefined,
        store: this.#store.description,
      },
      this.#clock.now(),
    );
  }

  /** Waits (bounded) until a token that `accept`s is usable, or answers why none can be had. */
  async #waitForToken(accept: (token: CurrentToken) => boolean): Promise<CurrentToken> {
    const deadline = this.#clock.now() + this.#auth.tokenWaitTimeoutMs;
    for (;;) {
      const token = this.current();
      if (token && accept(token)) return token;
      this.#throwIfUnusable();
      // Backing off after the token endpoint failed: answer now rather than let every request wait.
      if (this.#state === 'unavailable' && this.#unavailable?.code !== 'REFRESH_PENDING') throw this.#unavailableError();
      const left = deadline - this.#clock.now();
      if (left <= 0) throw this.#unavailableError();
      await this.#changes.next(left);
    }
  }

  #notify(): void {
    this.#changes.notify();
  }

  #throwIfUnusable(): void {
    if (this.#state === 'dead' && this.#record?.dead)
      throw new ProxyError('CREDENTIAL_DEAD', `upstream ${this.name}: ${this.#record.dead.reason}`);
    if (this.#needsCredentials)
      throw new ProxyError('NEEDS_CREDENTIALS', `upstream ${this.name} needs credentials: ${this.#needsCredentials}`);
    if (this.#state === 'loading')
      throw new ProxyError(
        'NO_USABLE_TOKEN',
        `no usable token for upstream ${this.name}: ${this.#firstRead.problem ?? 'the stored token is being read'}`,
        { retryAfterSeconds: 1 },
      );
    if (this.#state === 'stopped') throw new ProxyError('SHUTTING_DOWN', 'the proxy is shutting down');
  }

  #unavailableError(): ProxyError {
    const now = this.#clock.now();
    // While a retry runs, the reason of the attempt before it is still the best answer.
    if ((this.#state === 'unavailable' || this.#state === 'refreshing') && this.#unavailable) {
      const { code, reason } = this.#unavailable;
      const next = this.#retryAt > now ? `; next attempt in ${Math.ceil((this.#retryAt - now) / 1000)} s` : '';
      return new ProxyError(code, `no usable token for upstream ${this.name}: ${reason}${next}`, {
        retryAfterSeconds: Math.max(1, (this.#retryAt - now) / 1000),
      });
    }
    return new ProxyError(
      'REFRESH_PENDING',
      `no usable token for upstream ${this.name}: a token refresh is under way and did not finish within ${this.#auth.tokenWaitTimeoutMs} ms`,
      { retryAfterSeconds: 1 },
    );
  }

  // --- refreshing ----------------------------------------------------------------------------------

  /** Single-flight: every caller during a refresh shares the same one. */
  refresh(reason: RefreshReason, options: { afterRejection?: boolean } = {}): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (!this.#mayRefresh()) return Promise.resolve();
    this.#timer?.cancel();
    this.#moveTo('refreshing');
    this.#refreshing = this.#runRefresh(reason, options.afterRejection ?? false).finally(() => {
      this.#refreshing = undefined;
      this.#notify();
    });
    return this.#refreshing;
  }

  #mayRefresh(): boolean {
    const s = this.#state;
    return (s === 'valid' || s === 'empty' || s === 'unavailable') && this.#unstored === undefined && this.#needsCredentials === undefined;
  }

  async #runRefresh(reason: RefreshReason, afterRejection: boolean): Promise<void> {
    const startedFrom = this.#record?.generation ?? 0;
    let result: RefreshResult;
    try {
      result = await refreshUnderLease(this.#deps, this.#record, { afterRejection });
    } catch (error) {
      // The store failed (not the token endpoint): keep serving what we have and retry with backoff.
      this.#storeFailed(error, reason);
      return this.#schedule();
    }
    if ((this.#state as TokenState) === 'stopped') return;
    // A failed or blocked attempt is moot when another replica's newer token was announced meanwhile: a
    // retry would spend that token's refresh token on a needless refresh.
    if ((result.kind === 'transient' || result.kind === 'blocked') && (this.#record?.generation ?? 0) > startedFrom && this.current()) {
      result = { kind: 'adopted', record: this.#record };
    }
    this.#apply(result, reason);
    this.#schedule();
  }

  #apply(result: RefreshResult, reason: RefreshReason): void {
    switch (result.kind) {
      case 'adopted':
        this.#history.refreshEnded('adopted', reason, 0);
        return this.#settle(result.record);
      case 'refreshed':
        return this.#onRefreshed(result, reason);
      case 'transient': {
        const { failure, latencyMs } = result;
        this.#history.refreshEnded('transient_error', reason, latencyMs, failure.message);
        const delayMs = this.#backOff({ code: 'TOKEN_ENDPOINT_UNAVAILABLE', reason: failure.message }, failure.retryAfterMs);
        return logTransient(this.#outcome(reason, latencyMs), failure, {
          failures: this.#failures,
          delayMs,
          keeping: Boolean(this.current()),
        });
      }
      case 'blocked': {
        const changed = this.#unavailable?.reason !== result.reason;
        this.#unavailable = { code: 'REFRESH_PENDING', reason: result.reason };
        this.#retryAt = result.retryAt;
        this.#moveTo('unavailable');
        if (changed) this.#log.info({ event: 'refresh_blocked', reason }, `token refresh for ${this.name} waits: ${result.reason}`);
        return;
      }
      case 'dead': {
        const { record, failure, latencyMs } = result;
        const outcome = failure.kind === 'client_rejected' ? 'client_rejected' : 'credential_dead';
        this.#history.refreshEnded(outcome, reason, latencyMs, failure.message);
        logDead(this.#outcome(reason, latencyMs), record, failure, outcome);
        return this.#settle(record);
      }
      case 'needs_credentials':
        this.#needsCredentials = result.message;
        this.#log.error({ event: 'needs_credentials' }, `upstream ${this.name}: ${result.message}`);
        return this.#moveTo('needs_credentials');
    }
  }

  #onRefreshed(result: Extract<RefreshResult, { kind: 'refreshed' }>, reason: RefreshReason): void {
    const { record, grant, latencyMs } = result;
    this.#history.refreshEnded('success', reason, latencyMs);
    logRefreshed(this.#outcome(reason, latencyMs), record, grant, this.#clock.now());
    this.#settle(record);
    if (result.unstored) this.#keepWritingBack(record, result.unstored.expectedGeneration, result.unstored.lease);
  }

  #outcome(reason: RefreshReason, latencyMs: number): RefreshOutcome {
    return { log: this.#log, upstream: this.name, reason, latencyMs };
  }

  /** A pair the store did not take: written back before anything else happens to this credential. */
  #keepWritingBack(record: TokenRecord, expectedGeneration: number, lease: Parameters<typeof retryCommit>[0]['lease']): void {
    this.#metrics.storeWriteFailed(this.name);
    this.#unstored = retryCommit({
      deps: this.#deps,
      expectedGeneration,
      record,
      lease,
      onAttemptFailed: () => this.#metrics.storeWriteFailed(this.name),
      onLanded: (stored) => {
        this.#unstored = undefined;
        this.#settle(stored);
        this.#schedule();
      },
      onSuperseded: (stored) => {
        this.#unstored = undefined;
        if (stored) this.#settle(stored);
        this.#schedule();
      },
    });
  }

  #storeFailed(error: unknown, reason: RefreshReason): void {
    const message = error instanceof StoreUnavailableError ? error.message : `token store: ${describe(error)}`;
    this.#history.refreshEnded('transient_error', reason, 0, message);
    const delay = this.#backOff({ code: 'NO_USABLE_TOKEN', reason: message }, undefined);
    this.#log.warn(
      { event: 'refresh_failed', outcome: 'transient_error', reason, failures: this.#failures, retryInMs: Math.round(delay) },
      `token refresh for ${this.name} failed (${message}); retrying in ${Math.round(delay / 1000)} s`,
    );
  }

  /** Capped exponential backoff with jitter; returns the delay. */
  #backOff(unavailable: Unavailable, retryAfterMs: number | undefined): number {
    this.#failures += 1;
    const delay = backoffDelay(this.#failures, retryAfterMs, this.#random);
    this.#retryAt = this.#clock.now() + delay;
    this.#unavailable = unavailable;
    this.#moveTo('unavailable');
    return delay;
  }

  // --- state ---------------------------------------------------------------------------------------

  /** Takes `record` as the current one and moves to the state it implies. */
  #settle(record: TokenRecord | undefined): void {
    this.#adopt(record);
    this.#failures = 0;
    this.#retryAt = 0;
    this.#unavailable = undefined;
    this.#moveTo(this.#stateFor(record));
  }

  #stateFor(record: TokenRecord | undefined): TokenState {
    // A verdict on other client credentials than these (grant client_credentials) leaves this one to try.
    if (record?.dead && this.#deps.grant.verdictHolds(record)) return 'dead';
    if (this.#needsCredentials) return 'needs_credentials';
    return usableAccessToken(record) ? 'valid' : 'empty';
  }

  #adopt(record: TokenRecord | undefined): void {
    const wasDead = Boolean(this.#record?.dead);
    this.#record = record;
    const accessToken = usableAccessToken(record);
    this.#token =
      accessToken && record
        ? { generation: record.generation, expiresAt: accessToken.expiresAt, authorization: `Bearer ${accessToken.token}` }
        : undefined;
    // A new seed (the seed command, or a revived dead credential) answers "no refresh token yet".
    if (record && !record.dead && (wasDead || record.source === 'seed-command' || !record.accessToken) && this.#auth.missing.length === 0)
      this.#needsCredentials = undefined;
    this.#metrics.credentialDead(this.name, Boolean(record?.dead));
    this.#notify();
  }

  #moveTo(next: TokenState): void {
    const from = this.#state;
    if (from === next) return;
    if (!canMove(from, next)) {
      this.#log.error(
        { event: 'token_state_invalid', from, to: next },
        `token state of ${this.name}: ${from} → ${next} is not an allowed transition`,
      );
      if (from === 'stopped') return;
    }
    this.#state = next;
    this.#log.debug({ event: 'token_state', from, to: next }, `token state of ${this.name}: ${from} → ${next}`);
    this.#notify();
  }

  /** Another writer's record was announced (or the store came back): take it if it is newer. */
  async #reload(): Promise<void> {
    // A pair only this replica holds goes back first; its writer settles what is stored.
    if (this.#unstored || this.#state === 'stopped') return;
    try {
      // A record the store lost goes back at once, before a replica starting now stores a spent seed instead.
      const stored = await restoreLostRecord(this.#deps, this.#record, await this.#store.read(this.name));
      // Awaiting may have changed both (TypeScript narrows across the await, so read them afresh).
      if (this.#unstored || (this.#state as TokenState) === 'stopped') return;
      const mine = this.#record?.generation ?? 0;
      // Never trade a pair held here for an older record.
      if (!stored || stored.generation < mine) return;
      const newer = stored.generation > mine;
      if (this.#state === 'refreshing') {
        // The refresh under way re-reads the store and ends in this record anyway; meanwhile serve it.
        this.#adopt(stored);
      } else if (newer || Boolean(stored.dead) !== Boolean(this.#record?.dead)) {
        this.#settle(stored);
      } else {
        this.#adopt(stored);
      }
      this.#schedule();
    } catch (error) {
      this.#log.warn({ event: 'store_read_failed', err: describe(error) }, 'could not re-read the token record');
    }
  }

  #schedule(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const now = this.#clock.now();
    let at: number;
    switch (this.#state) {
      case 'unavailable':
        at = this.#retryAt;
        break;
      case 'valid':
      case 'empty':
        at = this.#token
          ? refreshAt(this.#record?.obtainedAt ?? now, this.#token.expiresAt, {
              fraction: this.#auth.earlyRefreshFraction,
              seconds: this.#auth.earlyRefreshSeconds,
            })
          : now;
        break;
      default:
        return;
    }
    if (this.#needsCredentials) return;
    this.#timer = this.#clock.after(Math.max(0, at - now), () => {
      const reason: RefreshReason = this.#failures > 0 || this.#state === 'unavailable' ? 'retry' : this.#token ? 'scheduled' : 'startup';
      void this.refresh(reason);
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
