/**
 * Keeps one upstream's current access token in memory and refreshes it: early on the clock, and on
 * demand when the upstream rejects it. The request path calls `current()`, which is synchronous and
 * never touches the store or the network; only refreshes do, one at a time (single-flight), under the
 * store's refresh lock, and always from the newest record in the store.
 */
import type { AuthConfig, UpstreamConfig } from '../config/types.js';
import { ProxyError, StoreError, TokenEndpointError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../admin/metrics.js';
import { RefreshHistory, type ReplayOutcome } from './refresh-history.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenClient, TokenGrant } from './providers/oauth2-client.js';
import { StoreUnavailableError, refreshUnderLock, restoreLostRecord, type RefreshDeps, type RefreshResult } from './refresh-procedure.js';
import { MAX_TIMER_DELAY_MS, backoffDelay, refreshAt, waitAtMost } from './refresh-schedule.js';
import { loadOrSeed } from './load-record.js';
import { usableAccessToken } from './token-record.js';
import type { TokenStatus } from './token-status.js';
import { describeTokenState } from './describe-token-state.js';

/** See replayDecision: how long a token that was rejected right after a rejection-triggered refresh is trusted. */
const SUSPECT_REJECTION_MIN_AGE_MS = 60_000;
/** A store that could not be read is tried again at least this often (and at once when it announces itself). */
const MAX_LOAD_RETRY_MS = 5000;

export interface CurrentToken {
  readonly generation: number;
  readonly expiresAt: number;
  /** The ready-made header value, so the request path does no string work. */
  readonly authorization: string;
}

export type RefreshReason = 'startup' | 'scheduled' | 'expired' | 'rejected' | 'retry';

/** What a request whose token was rejected should do. */
export type ReplayDecision = 'newer' | 'refresh' | 'none';

export interface TokenManagerOptions {
  upstream: UpstreamConfig;
  store: TokenStore;
  client: TokenClient;
  logger: Logger;
  metrics: Metrics;
  /** This replica's id: lock owner and record writer. */
  owner: string;
}

export class TokenManager {
  readonly #upstream: UpstreamConfig;
  readonly #auth: AuthConfig;
  readonly #store: TokenStore;
  readonly #client: TokenClient;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #owner: string;

  #record: TokenRecord | undefined;
  #token: CurrentToken | undefined;
  #refreshing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #consecutiveFailures = 0;
  #nextAttemptAt = 0;
  /** A generation obtained because the previous one was rejected: if it is rejected too, expiry is not the reason. */
  #rejectionBornGeneration = -1;
  #needsCredentials: string | undefined;
  /** The stored record has been read (or seeded): until then nothing refreshes and requests get a 503. */
  #loaded = false;
  #loading: Promise<void> | undefined;
  #loadRetry: NodeJS.Timeout | undefined;
  #loadFailures = 0;
  /** Why the stored record cannot be read yet. */
  #storeProblem: string | undefined;
  readonly #history: RefreshHistory;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  readonly #refreshDeps: RefreshDeps;
  /** The current record is served from memory: the store has not taken it yet (retried until it does). */
  #storeWritePending = false;

  constructor(options: TokenManagerOptions) {
    this.#upstream = options.upstream;
    this.#auth = options.upstream.auth;
    this.#store = options.store;
    this.#client = options.client;
    this.#log = options.logger.child({ upstream: options.upstream.name });
    this.#metrics = options.metrics;
    this.#owner = options.owner;
    this.#history = new RefreshHistory(options.upstream.name, options.metrics);
    this.#refreshDeps = {
      name: this.name,
      auth: this.#auth,
      store: this.#store,
      client: this.#client,
      owner: this.#owner,
      log: this.#log,
      onStoreWriteFailed: () => {
        this.#storeWritePending = true;
        this.#metrics.storeWriteFailures.inc({ upstream: this.name });
      },
      onStoreWriteRecovered: () => {
        this.#storeWritePending = false;
      },
      onWriteSuperseded: () => void this.#reload(),
      isStopped: () => this.#stopped,
    };
  }

  get name(): string {
    return this.#upstream.name;
  }

  /**
   * Loads (or seeds) the stored record and starts refreshing. A token endpoint that is down does not fail
   * this, nor does a store that is unreachable for now (the upstream stays unready and the load is retried);
   * a store that answers wrongly (a corrupt file, a record that does not decrypt) does.
   */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe((key, generation) => {
      if (key !== this.name && key !== '*') return;
      if (!this.#loaded) void this.#load();
      else if (generation !== this.#record?.generation) void this.#reload();
    });
    if (this.#auth.missing.length > 0) {
      this.#needsCredentials = `missing ${this.#auth.missing.join(' and ')}`;
      this.#log.warn({ event: 'needs_credentials', missing: this.#auth.missing }, `upstream ${this.name} needs credentials: ${this.#needsCredentials}`);
    }
    await this.#load({ atStart: true });
  }

  #load(options: { atStart?: boolean } = {}): Promise<void> {
    this.#loading ??= this.#tryLoad(options.atStart ?? false).finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #tryLoad(atStart: boolean): Promise<void> {
    if (this.#loaded || this.#stopped) return;
    clearTimeout(this.#loadRetry);
    try {
      const record = await loadOrSeed(this.#refreshDeps, this.#auth.refreshToken?.reveal());
      if (this.#storeProblem) this.#log.info({ event: 'store_read_recovered' }, `token store readable again; upstream ${this.name} starts`);
      this.#loaded = true;
      this.#storeProblem = undefined;
      this.#adopt(record);
      this.#schedule();
    } catch (error) {
      if (atStart && !(error instanceof StoreError && error.retryable)) throw error;
      this.#loadFailures += 1;
      const problem = `token store unavailable: ${describe(error)}`;
      const retryInMs = Math.round(Math.min(backoffDelay(this.#loadFailures, undefined), MAX_LOAD_RETRY_MS));
      if (problem !== this.#storeProblem) this.#log.warn({ event: 'store_read_failed', retryInMs }, `${problem}; upstream ${this.name} is not ready until it can be read`);
      this.#storeProblem = problem;
      this.#loadRetry = setTimeout(() => void this.#load(), retryInMs);
      this.#loadRetry.unref();
    }
  }

  /** The token to attach, if one is usable right now. Synchronous: this is the request path. */
  current(): CurrentToken | undefined {
    const token = this.#token;
    return token !== undefined && token.expiresAt > Date.now() ? token : undefined;
  }

  /** A usable token, waiting (bounded) for a refresh when there is none. Throws a 503 ProxyError. */
  async acquire(): Promise<CurrentToken> {
    const ready = this.current();
    if (ready) return ready;
    if (!this.#loaded) throw new ProxyError('NO_USABLE_TOKEN', `no usable token for upstream ${this.name}: ${this.#storeProblem ?? 'the stored token is being read'}`);
    this.#throwIfUnusable();
    if (!this.#refreshing && Date.now() < this.#nextAttemptAt) {
      // Backing off after failures: answer now rather than hammer a failing token endpoint per request.
      throw new ProxyError('NO_USABLE_TOKEN', `no usable token for upstream ${this.name}: ${this.#history.last?.error ?? 'refresh pending'}; next attempt in ${Math.ceil((this.#nextAttemptAt - Date.now()) / 1000)} s`);
    }
    await waitAtMost(this.refresh('expired'), this.#auth.tokenWaitTimeoutMs);
    const token = this.current();
    if (token) return token;
    this.#throwIfUnusable();
    throw new ProxyError('NO_USABLE_TOKEN', `no usable token for upstream ${this.name}: ${this.#history.last?.error ?? 'the refresh did not produce one'}`);
  }

  /** Decided when the upstream rejects a token, before its response is thrown away for a replay. */
  replayDecision(rejectedGeneration: number): ReplayDecision {
    if (this.#record?.dead || this.#needsCredentials) return 'none';
    const current = this.current();
    if (current && current.generation > rejectedGeneration) return 'newer';
    if (rejectedGeneration !== this.#token?.generation) return 'none';
    // Bounded: a token fetched because its predecessor was rejected, and rejected too, means the upstream
    // refuses for another reason (Collaborate's 403 for a forbidden resource). Such a token is refreshed on
    // rejection again only once it is a minute old, so a revoked token still recovers before its clock refresh.
    if (rejectedGeneration === this.#rejectionBornGeneration && Date.now() - (this.#record?.obtainedAt ?? 0) < SUSPECT_REJECTION_MIN_AGE_MS) return 'none';
    // Backing off after a failed refresh: a rejection joins a refresh in flight but never starts one early,
    // or every rejected request during a token endpoint outage would send a token request of its own.
    if (!this.#refreshing && Date.now() < this.#nextAttemptAt) return 'none';
    return 'refresh';
  }

  /** A token newer than the rejected one, refreshing if needed; undefined when there is none to replay with. */
  async replacementFor(rejectedGeneration: number): Promise<CurrentToken | undefined> {
    const decision = this.replayDecision(rejectedGeneration);
    if (decision === 'none') return undefined;
    if (decision === 'refresh') {
      await waitAtMost(this.refresh('rejected'), this.#auth.tokenWaitTimeoutMs).catch(() => undefined);
    }
    const token = this.current();
    return token && token.generation > rejectedGeneration ? token : undefined;
  }

  /**
   * A rejection of a request whose body could not be kept for a replay: the next request should find a
   * fresh token, but nothing is replayed, so nothing is learned about whether the rejection was about the token.
   */
  rejectedWithoutReplay(rejectedGeneration: number): void {
    void this.replacementFor(rejectedGeneration).catch(() => undefined);
  }

  /**
   * A replay with this generation was accepted: the rejection that produced it was about the token after
   * all, so later rejections of it may trigger a refresh again (e.g. the upstream revoked it).
   */
  confirmReplayAccepted(generation: number): void {
    if (generation === this.#rejectionBornGeneration) this.#rejectionBornGeneration = -1;
  }

  /** Counted for the status page and the metrics. */
  replayEnded(outcome: ReplayOutcome): void {
    this.#history.replayEnded(outcome);
  }

  /** Single-flight: every caller during a refresh shares the same one. */
  refresh(reason: RefreshReason): Promise<void> {
    this.#refreshing ??= this.#runRefresh(reason).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  status(): TokenStatus {
    return describeTokenState({
      upstream: this.name,
      record: this.#record,
      token: this.#token,
      needsCredentials: this.#needsCredentials,
      storeProblem: this.#loaded ? undefined : this.#storeProblem,
      refreshing: this.#refreshing !== undefined,
      history: this.#history,
      storeWritePending: this.#storeWritePending,
      store: this.#store.description,
    });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#loadRetry);
    this.#unsubscribe?.();
  }

  // --- refreshing ----------------------------------------------------------------------------------

  async #runRefresh(reason: RefreshReason): Promise<void> {
    if (this.#stopped || !this.#loaded || this.#record?.dead || this.#needsCredentials) return;
    const startedFrom = this.#record?.generation ?? 0;
    let result: RefreshResult;
    try {
      result = await refreshUnderLock(this.#refreshDeps, this.#record);
    } catch (error) {
      // The store failed (not the token endpoint): keep serving what we have and retry with backoff.
      const message = error instanceof StoreUnavailableError ? error.message : `token store: ${describe(error)}`;
      result = { kind: 'transient', failure: new TokenEndpointError('transient', message), latencyMs: 0 };
    }
    try {
      // A failed attempt is moot when another replica's newer token was announced meanwhile (e.g. this one
      // was frozen past its lock): a retry would spend that token's refresh token on a needless refresh.
      if (result.kind === 'transient' && (this.#record?.generation ?? 0) > startedFrom && this.current()) this.#apply({ kind: 'adopted', record: this.#record }, reason);
      else this.#apply(result, reason);
    } finally {
      this.#schedule();
    }
  }

  #apply(result: RefreshResult, reason: RefreshReason): void {
    switch (result.kind) {
      case 'adopted':
        if (result.record) this.#adopt(result.record);
        this.#consecutiveFailures = 0;
        this.#nextAttemptAt = 0;
        return this.#history.refreshEnded('adopted', reason, 0);
      case 'refreshed':
        return this.#onRefreshed(result.record, result.grant, reason, result.latencyMs);
      case 'transient':
        return this.#onTransientFailure(result.failure, reason, result.latencyMs);
      case 'dead':
        return this.#onCredentialDead(result.record, result.failure, reason, result.latencyMs);
      case 'needs_credentials':
        this.#needsCredentials = result.message;
        this.#log.error({ event: 'needs_credentials' }, `upstream ${this.name}: ${result.message}`);
        return;
      case 'lock_timeout':
        return this.#history.refreshEnded('transient_error', reason, 0, 'timed out waiting for another replica to refresh');
    }
  }

  #onRefreshed(record: TokenRecord, grant: TokenGrant, reason: RefreshReason, latencyMs: number): void {
    this.#adopt(record);
    this.#consecutiveFailures = 0;
    this.#nextAttemptAt = 0;
    if (reason === 'rejected') this.#rejectionBornGeneration = record.generation;
    this.#history.refreshEnded('success', reason, latencyMs);
    this.#log.info(
      {
        event: 'token_refreshed', outcome: 'success', reason, grant: grant.type, generation: record.generation, latencyMs,
        expiresInSeconds: Math.round(((record.accessTokenExpiresAt ?? Date.now()) - Date.now()) / 1000),
        accessTokenFingerprint: fingerprint(record.accessToken), refreshTokenFingerprint: fingerprint(record.refreshToken),
        refreshTokenRotated: grant.type === 'refresh_token' && record.refreshToken !== grant.refreshToken,
      },
      `new token for ${this.name} (generation ${record.generation})`,
    );
  }

  #onTransientFailure(failure: TokenEndpointError, reason: RefreshReason, latencyMs: number): void {
    this.#consecutiveFailures += 1;
    const delay = backoffDelay(this.#consecutiveFailures, failure.retryAfterMs);
    this.#nextAttemptAt = Date.now() + delay;
    this.#history.refreshEnded('transient_error', reason, latencyMs, failure.message);
    const keeping = this.current() ? 'keeping the current token' : 'no usable token meanwhile';
    this.#log.warn(
      { event: 'refresh_failed', outcome: 'transient_error', reason, latencyMs, httpStatus: failure.httpStatus, failures: this.#consecutiveFailures, retryInMs: Math.round(delay) },
      `token refresh for ${this.name} failed (${failure.message}); ${keeping}; retrying in ${Math.round(delay / 1000)} s`,
    );
  }

  #onCredentialDead(record: TokenRecord, failure: TokenEndpointError, reason: RefreshReason, latencyMs: number): void {
    this.#adopt(record);
    const outcome = failure.kind === 'client_rejected' ? 'client_rejected' : 'credential_dead';
    this.#history.refreshEnded(outcome, reason, latencyMs, failure.message);
    this.#log.error(
      { event: 'credential_dead', outcome, reason, latencyMs, providerCode: failure.providerCode, httpStatus: failure.httpStatus },
      `CREDENTIAL DEAD for ${this.name}: ${record.dead?.reason ?? failure.message}`,
    );
  }

  // --- state ---------------------------------------------------------------------------------------

  #adopt(record: TokenRecord | undefined): void {
    const wasDead = Boolean(this.#record?.dead);
    this.#record = record;
    const accessToken = usableAccessToken(record);
    this.#token = accessToken && record
      ? { generation: record.generation, expiresAt: accessToken.expiresAt, authorization: `Bearer ${accessToken.token}` }
      : undefined;
    if (record && !record.dead && (wasDead || record.source === 'seed-command')) {
      this.#needsCredentials = this.#auth.missing.length > 0 ? this.#needsCredentials : undefined;
    }
    this.#metrics.credentialDead.set({ upstream: this.name }, record?.dead ? 1 : 0);
  }

  async #reload(): Promise<void> {
    try {
      // A record the store lost goes back at once, before a replica starting now stores a spent seed instead.
      const stored = await restoreLostRecord(this.#refreshDeps, this.#record, await this.#store.read(this.name));
      if (stored && stored.generation >= (this.#record?.generation ?? 0)) {
        const revived = Boolean(this.#record?.dead) && !stored.dead;
        const newer = stored.generation > (this.#record?.generation ?? 0);
        this.#adopt(stored);
        // A newer usable token from another replica settles the refresh this one was backing off to retry:
        // retrying anyway would spend the new refresh token on a second, needless refresh.
        if (newer && this.#token) {
          this.#consecutiveFailures = 0;
          this.#nextAttemptAt = 0;
        }
        if (revived || (!stored.dead && !stored.accessToken)) this.#needsCredentials = this.#auth.missing.length > 0 ? this.#needsCredentials : undefined;
        this.#schedule();
      }
    } catch (error) {
      this.#log.warn({ event: 'store_read_failed', err: describe(error) }, 'could not re-read the token record');
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped || !this.#loaded || this.#record?.dead || this.#needsCredentials) return;
    let at: number;
    if (this.#consecutiveFailures > 0) at = this.#nextAttemptAt;
    else if (!this.#token) at = Date.now();
    else at = refreshAt(this.#record?.obtainedAt ?? Date.now(), this.#token.expiresAt, { fraction: this.#auth.earlyRefreshFraction, seconds: this.#auth.earlyRefreshSeconds });
    const delay = Math.max(0, at - Date.now());
    this.#timer = setTimeout(() => {
      if (Date.now() + 1000 < at) return this.#schedule(); // woke early from a clamped long wait
      void this.refresh(this.#consecutiveFailures > 0 ? 'retry' : this.#token ? 'scheduled' : 'startup');
    }, Math.min(delay, MAX_TIMER_DELAY_MS));
    this.#timer.unref();
  }

  #throwIfUnusable(): void {
    if (this.#record?.dead) throw new ProxyError('CREDENTIAL_DEAD', `upstream ${this.name}: ${this.#record.dead.reason}`);
    if (this.#needsCredentials) throw new ProxyError('NEEDS_CREDENTIALS', `upstream ${this.name} needs credentials: ${this.#needsCredentials}`);
  }

}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
