/**
 * Keeps one upstream's current access token in memory and refreshes it: early on the clock, and on
 * demand when the upstream rejects it. The request path calls `current()`, which is synchronous and
 * never touches the store or the network; only refreshes do, one at a time (single-flight), under the
 * store's refresh lock, and always from the newest record in the store.
 */
import type { AuthConfig, UpstreamConfig } from '../config/types.js';
import { ProxyError, TokenEndpointError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics, RefreshOutcome } from '../admin/metrics.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { TokenClient, TokenGrant } from './providers/oauth2-client.js';
import { MAX_TIMER_DELAY_MS, backoffDelay, refreshAt } from './refresh-schedule.js';
import { nextRecord, seedRecord, usableAccessToken } from './token-record.js';
import type { TokenStatus } from './token-status.js';

/** See replayDecision: how long a token that was rejected right after a rejection-triggered refresh is trusted. */
const SUSPECT_REJECTION_MIN_AGE_MS = 60_000;

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
  #lastRefresh: TokenStatus['lastRefresh'];
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(options: TokenManagerOptions) {
    this.#upstream = options.upstream;
    this.#auth = options.upstream.auth;
    this.#store = options.store;
    this.#client = options.client;
    this.#log = options.logger.child({ upstream: options.upstream.name });
    this.#metrics = options.metrics;
    this.#owner = options.owner;
  }

  get name(): string {
    return this.#upstream.name;
  }

  /** Loads (or seeds) the stored record and starts refreshing. A token endpoint that is down does not fail this. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe((key, generation) => {
      if (key === this.name && generation !== this.#record?.generation) void this.#reload();
    });
    if (this.#auth.missing.length > 0) {
      this.#needsCredentials = `missing ${this.#auth.missing.join(' and ')}`;
      this.#log.warn({ event: 'needs_credentials', missing: this.#auth.missing }, `upstream ${this.name} needs credentials: ${this.#needsCredentials}`);
    }
    let record = await this.#store.read(this.name);
    const seed = this.#auth.refreshToken?.reveal();
    if (seed && (!record || this.#isNewSeedForDeadRecord(record, seed))) {
      const next = seedRecord(record, seed, this.#owner);
      if ((await this.#store.compareAndSet(this.name, record?.generation ?? 0, next)) === 'applied') {
        this.#log.info({ event: 'seeded', generation: next.generation, refreshToken: fingerprint(seed) }, 'stored the configured refresh token');
      }
      record = await this.#store.read(this.name);
    }
    this.#adopt(record);
    this.#schedule();
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
    this.#throwIfUnusable();
    if (!this.#refreshing && Date.now() < this.#nextAttemptAt) {
      // Backing off after failures: answer now rather than hammer a failing token endpoint per request.
      throw new ProxyError('NO_USABLE_TOKEN', `no usable token for upstream ${this.name}: ${this.#lastRefresh?.error ?? 'refresh pending'}; next attempt in ${Math.ceil((this.#nextAttemptAt - Date.now()) / 1000)} s`);
    }
    await this.#withinWaitLimit(this.refresh('expired'));
    const token = this.current();
    if (token) return token;
    this.#throwIfUnusable();
    throw new ProxyError('NO_USABLE_TOKEN', `no usable token for upstream ${this.name}: ${this.#lastRefresh?.error ?? 'the refresh did not produce one'}`);
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
      await this.#withinWaitLimit(this.refresh('rejected')).catch(() => undefined);
    }
    const token = this.current();
    return token && token.generation > rejectedGeneration ? token : undefined;
  }

  /**
   * A replay with this generation was accepted: the rejection that produced it was about the token after
   * all, so later rejections of it may trigger a refresh again (e.g. the upstream revoked it).
   */
  confirmReplayAccepted(generation: number): void {
    if (generation === this.#rejectionBornGeneration) this.#rejectionBornGeneration = -1;
  }

  /** Single-flight: every caller during a refresh shares the same one. */
  refresh(reason: RefreshReason): Promise<void> {
    this.#refreshing ??= this.#runRefresh(reason).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  status(): TokenStatus {
    const now = Date.now();
    const token = this.#token;
    return {
      upstream: this.name,
      state: this.#state(),
      reason: this.#notReadyReason(),
      generation: this.#record?.generation ?? 0,
      accessTokenFingerprint: this.#record?.accessToken ? fingerprint(this.#record.accessToken) : undefined,
      refreshTokenFingerprint: this.#record?.refreshToken ? fingerprint(this.#record.refreshToken) : undefined,
      expiresInSeconds: token ? Math.round((token.expiresAt - now) / 1000) : undefined,
      refreshTokenExpiresInSeconds: this.#record?.refreshTokenExpiresAt ? Math.round((this.#record.refreshTokenExpiresAt - now) / 1000) : undefined,
      obtainedAt: this.#record?.obtainedAt ? new Date(this.#record.obtainedAt).toISOString() : undefined,
      lastRefresh: this.#lastRefresh,
      store: this.#store.description,
    };
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
  }

  // --- refreshing ----------------------------------------------------------------------------------

  async #runRefresh(reason: RefreshReason): Promise<void> {
    if (this.#stopped || this.#record?.dead || this.#needsCredentials) return;
    const lockTtlMs = this.#auth.tokenRequestTimeoutMs * 2 + 5000; // outlives the token request it guards
    if (!(await this.#acquireLock(lockTtlMs))) return;
    const renewal = setInterval(() => void this.#store.renewLock(this.name, this.#owner, lockTtlMs).catch(() => undefined), lockTtlMs / 3);
    renewal.unref();
    try {
      // Refresh from the newest stored record: another process may have refreshed already.
      const stored = await this.#store.read(this.name);
      if (stored && stored.generation > (this.#record?.generation ?? 0)) {
        this.#adopt(stored);
        if (this.current()) return this.#recordOutcome('adopted', reason, 0);
      }
      await this.#refreshFrom(stored, reason);
    } finally {
      clearInterval(renewal);
      await this.#store.releaseLock(this.name, this.#owner).catch(() => undefined);
      this.#schedule();
    }
  }

  async #refreshFrom(record: TokenRecord | undefined, reason: RefreshReason): Promise<void> {
    const grants = this.#grantsFor(record);
    if (grants.length === 0) {
      this.#needsCredentials = record?.refreshToken
        ? 'the refresh token has expired; seed a new one (oauth-sidecar seed) or set auth.refreshToken'
        : 'no refresh token yet; set auth.refreshToken or run oauth-sidecar seed';
      this.#log.error({ event: 'needs_credentials' }, `upstream ${this.name}: ${this.#needsCredentials}`);
      return;
    }
    for (const [index, grant] of grants.entries()) {
      const isLast = index === grants.length - 1;
      if (grant.type === 'refresh_token' && record && !(await this.#markInFlight(record, grant.refreshToken))) return;
      const startedAt = Date.now();
      try {
        const tokens = await this.#client.requestToken(grant);
        const next = nextRecord(record, tokens, grant, startedAt, this.#owner);
        await this.#commit(record?.generation ?? 0, next);
        this.#consecutiveFailures = 0;
        this.#nextAttemptAt = 0;
        if (reason === 'rejected') this.#rejectionBornGeneration = next.generation;
        this.#recordOutcome('success', reason, Date.now() - startedAt);
        this.#log.info(
          {
            event: 'token_refreshed', outcome: 'success', reason, grant: grant.type, generation: next.generation, latencyMs: Date.now() - startedAt,
            expiresInSeconds: Math.round(((next.accessTokenExpiresAt ?? startedAt) - Date.now()) / 1000),
            accessToken: fingerprint(next.accessToken), refreshToken: fingerprint(next.refreshToken),
            refreshTokenRotated: grant.type === 'refresh_token' && next.refreshToken !== grant.refreshToken,
          },
          `new token for ${this.name} (generation ${next.generation})`,
        );
        return;
      } catch (error) {
        const failure = error instanceof TokenEndpointError ? error : new TokenEndpointError('transient', String(error));
        const latency = Date.now() - startedAt;
        if (failure.kind === 'transient') return this.#onTransientFailure(failure, reason, latency);
        // The password grant (Apiax) can revive a credential whose refresh token died.
        if (!isLast) {
          this.#log.warn({ event: 'refresh_rejected', providerCode: failure.providerCode, httpStatus: failure.httpStatus }, `${failure.message}; trying the ${grants[index + 1]?.type} grant`);
          continue;
        }
        return this.#onCredentialDead(record, failure, reason, latency);
      }
    }
  }

  #grantsFor(record: TokenRecord | undefined): TokenGrant[] {
    const grants: TokenGrant[] = [];
    const refreshToken = record?.refreshToken;
    const refreshExpired = record?.refreshTokenExpiresAt !== undefined && record.refreshTokenExpiresAt <= Date.now();
    if (refreshToken && !refreshExpired) grants.push({ type: 'refresh_token', refreshToken });
    if (this.#auth.username && this.#auth.password) {
      grants.push({ type: 'password', username: this.#auth.username, password: this.#auth.password.reveal() });
    }
    return grants;
  }

  /** Notes in the store that this refresh token is about to be sent, so nobody mistakes it for unspent later. */
  async #markInFlight(record: TokenRecord, refreshToken: string): Promise<boolean> {
    const previous = record.refreshInFlight;
    if (previous && previous.owner !== this.#owner) {
      this.#log.warn(
        { event: 'refresh_in_flight_found', since: new Date(previous.since).toISOString(), by: previous.owner, refreshToken: previous.refreshTokenFingerprint },
        'a previous refresh with this refresh token did not finish; it may already be spent',
      );
    }
    const marked: TokenRecord = {
      ...record,
      refreshInFlight: { since: Date.now(), refreshTokenFingerprint: fingerprint(refreshToken) ?? '', owner: this.#owner },
    };
    if ((await this.#store.compareAndSet(this.name, record.generation, marked)) === 'applied') {
      this.#record = marked;
      return true;
    }
    // Someone wrote a newer record between our read and the mark: use theirs, send nothing.
    await this.#reload();
    return false;
  }

  /** Stores the new record before it is used; a failed write is retried but never delays the new token. */
  async #commit(expectedGeneration: number, next: TokenRecord): Promise<void> {
    try {
      if ((await this.#store.compareAndSet(this.name, expectedGeneration, next)) === 'stale') {
        // We lost the lock while the token request ran and another writer got in first: its record wins.
        this.#log.error({ event: 'commit_stale', generation: next.generation }, 'a newer record was stored while refreshing; adopting it');
        await this.#reload();
        return;
      }
    } catch (error) {
      this.#metrics.storeWriteFailures.inc({ upstream: this.name });
      this.#log.error({ event: 'store_write_failed', err: describe(error) }, 'could not store the new token record; serving it from memory and retrying the write');
      this.#retryCommit(expectedGeneration, next, 1);
    }
    this.#adopt(next);
  }

  #retryCommit(expectedGeneration: number, next: TokenRecord, attempt: number): void {
    const timer = setTimeout(() => {
      this.#store.compareAndSet(this.name, expectedGeneration, next).then(
        (result) => this.#log.info({ event: 'store_write_recovered', result, generation: next.generation }, 'stored the token record after retrying'),
        () => {
          this.#metrics.storeWriteFailures.inc({ upstream: this.name });
          if (!this.#stopped) this.#retryCommit(expectedGeneration, next, attempt + 1);
        },
      );
    }, backoffDelay(attempt, undefined));
    timer.unref();
  }

  #onTransientFailure(failure: TokenEndpointError, reason: RefreshReason, latencyMs: number): void {
    this.#consecutiveFailures += 1;
    const delay = backoffDelay(this.#consecutiveFailures, failure.retryAfterMs);
    this.#nextAttemptAt = Date.now() + delay;
    this.#recordOutcome('transient_error', reason, latencyMs, failure.message);
    const keeping = this.current() ? 'keeping the current token' : 'no usable token meanwhile';
    this.#log.warn(
      { event: 'refresh_failed', outcome: 'transient_error', reason, latencyMs, httpStatus: failure.httpStatus, failures: this.#consecutiveFailures, retryInMs: Math.round(delay) },
      `token refresh for ${this.name} failed (${failure.message}); ${keeping}; retrying in ${Math.round(delay / 1000)} s`,
    );
  }

  async #onCredentialDead(record: TokenRecord | undefined, failure: TokenEndpointError, reason: RefreshReason, latencyMs: number): Promise<void> {
    const mark = record?.refreshInFlight;
    const context = mark && (mark.owner !== this.#owner || mark.since < (this.#lastRefresh?.at ? Date.parse(this.#lastRefresh.at) : 0))
      ? `; an earlier refresh with this refresh token (${mark.owner}, ${new Date(mark.since).toISOString()}) did not finish and probably spent it`
      : '';
    const what = failure.kind === 'client_rejected' ? 'the client credentials were rejected' : 'the refresh token was rejected';
    const reasonText = `${what}: ${failure.message}${context}. Fix: seed a new refresh token (oauth-sidecar seed ${this.name}, or auth.refreshToken and restart)`;
    const dead: TokenRecord = { ...(record ?? { generation: 1, obtainedAt: Date.now(), source: 'refresh', writer: this.#owner }), dead: { at: Date.now(), reason: reasonText }, writer: this.#owner };
    delete (dead as { refreshInFlight?: unknown }).refreshInFlight;
    await this.#store.compareAndSet(this.name, record?.generation ?? 0, dead).catch(() => undefined);
    this.#record = dead;
    const outcome = failure.kind === 'client_rejected' ? 'client_rejected' : 'credential_dead';
    this.#recordOutcome(outcome, reason, latencyMs, failure.message);
    this.#metrics.credentialDead.set({ upstream: this.name }, 1);
    this.#log.error({ event: 'credential_dead', outcome, reason, latencyMs, providerCode: failure.providerCode, httpStatus: failure.httpStatus }, `CREDENTIAL DEAD for ${this.name}: ${reasonText}`);
  }

  async #acquireLock(ttlMs: number): Promise<boolean> {
    const deadline = Date.now() + this.#auth.tokenWaitTimeoutMs;
    const startGeneration = this.#record?.generation ?? 0;
    while (!(await this.#store.acquireLock(this.name, this.#owner, ttlMs))) {
      // Another replica is refreshing: wait for its record rather than refresh ourselves.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const stored = await this.#store.read(this.name);
      if (stored && stored.generation > startGeneration) {
        this.#adopt(stored);
        return false;
      }
      if (Date.now() > deadline) {
        this.#recordOutcome('transient_error', 'expired', 0, 'timed out waiting for another replica to refresh');
        return false;
      }
    }
    return true;
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
      const stored = await this.#store.read(this.name);
      if (stored && stored.generation >= (this.#record?.generation ?? 0)) {
        const revived = Boolean(this.#record?.dead) && !stored.dead;
        this.#adopt(stored);
        if (revived || (!stored.dead && !stored.accessToken)) this.#needsCredentials = this.#auth.missing.length > 0 ? this.#needsCredentials : undefined;
        this.#schedule();
      }
    } catch (error) {
      this.#log.warn({ event: 'store_read_failed', err: describe(error) }, 'could not re-read the token record');
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped || this.#record?.dead || this.#needsCredentials) return;
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

  #recordOutcome(outcome: RefreshOutcome, reason: RefreshReason, latencyMs: number, error?: string): void {
    this.#metrics.refreshes.inc({ upstream: this.name, outcome, reason });
    if (outcome !== 'adopted') this.#metrics.refreshDuration.observe({ upstream: this.name }, latencyMs / 1000);
    this.#lastRefresh = { at: new Date().toISOString(), outcome, reason, latencyMs, ...(error ? { error } : {}) };
  }

  #isNewSeedForDeadRecord(record: TokenRecord, seed: string): boolean {
    const seedPrint = fingerprint(seed);
    return Boolean(record.dead) && seedPrint !== record.seedFingerprint && seedPrint !== fingerprint(record.refreshToken);
  }

  #state(): TokenStatus['state'] {
    if (this.#record?.dead) return 'credential_dead';
    if (this.current()) return 'ok';
    if (this.#needsCredentials) return 'needs_credentials';
    if (this.#refreshing) return 'refreshing';
    return this.#record ? 'expired' : 'starting';
  }

  #notReadyReason(): string | undefined {
    if (this.#record?.dead) return this.#record.dead.reason;
    if (this.current()) return undefined;
    if (this.#needsCredentials) return this.#needsCredentials;
    return this.#lastRefresh?.error ?? (this.#refreshing ? 'first token being fetched' : 'no token yet');
  }

  #throwIfUnusable(): void {
    if (this.#record?.dead) throw new ProxyError('CREDENTIAL_DEAD', `upstream ${this.name}: ${this.#record.dead.reason}`);
    if (this.#needsCredentials) throw new ProxyError('NEEDS_CREDENTIALS', `upstream ${this.name} needs credentials: ${this.#needsCredentials}`);
  }

  async #withinWaitLimit(work: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#auth.tokenWaitTimeoutMs);
    });
    try {
      await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
