/**
 * The token cache seam. One record per credential (upstream), versioned by a generation number that
 * only grows: every new token pair is written as generation+1 with compare-and-set, so a writer that
 * refreshed from an old record can never overwrite a newer one (the generation is the fencing token).
 * Memory and file implement it for one replica; a Redis implementation shares it between replicas.
 */

export interface TokenRecord {
  /** 1 for the first record (often a seed holding only a refresh token); +1 for every new token pair. */
  readonly generation: number;
  readonly accessToken?: string;
  /** Epoch ms; computed from the moment the token request was sent. */
  readonly accessTokenExpiresAt?: number;
  readonly refreshToken?: string;
  /** Epoch ms; absent when the refresh token has no fixed expiry. */
  readonly refreshTokenExpiresAt?: number;
  /** Epoch ms when this record's tokens were requested. */
  readonly obtainedAt: number;
  /** How this record came to be: seed from config, refresh, password grant, login, seed command. */
  readonly source: 'seed' | 'refresh' | 'password' | 'authorization_code' | 'seed-command';
  /**
   * Set just before this record's refresh token is sent to the token endpoint, so that whoever reads the
   * record next knows the refresh token may already be spent (the sender died or timed out).
   */
  readonly refreshInFlight?: {
    readonly since: number;
    readonly refreshTokenFingerprint: string;
    readonly owner: string;
    /**
     * Until then no other replica sends this refresh token: the owner may have spent it and be about to
     * store the result. Absent in marks written by older versions (then since + auth.inFlightMarkTtlMs).
     */
    readonly expiresAt?: number;
  };
  /**
   * This record's access token was fetched because its predecessor was rejected, and a replay will test it.
   * If it is rejected too within a minute, the rejection is about the request (an upstream that answers 403
   * for a forbidden resource), not the token: every replica reads this from the record and does not refresh
   * again, so all of them together refresh at most once per generation on such a path. An accepted replay
   * removes it.
   */
  readonly fetchedAfterRejection?: true;
  /** Set when the token endpoint rejected this record's refresh token for good. */
  readonly dead?: { readonly at: number; readonly reason: string };
  /** Fingerprint of the configured seed this record descends from, so a spent seed is never applied twice. */
  readonly seedFingerprint?: string;
  /** Who wrote the record (replica id), for idempotent retries and for the status page. */
  readonly writer: string;
}

export type CompareAndSetResult = 'applied' | 'stale';

export type RecordChangeListener = (key: string, generation: number) => void;

export interface TokenStore {
  /** Human-readable location for logs and status, e.g. "file /data/tokens.json". Never holds a secret. */
  readonly description: string;
  read(key: string): Promise<TokenRecord | undefined>;
  /**
   * Writes `next` only if the stored generation is still `expectedGeneration` (0 = no record yet).
   * `next.generation` is expectedGeneration (an annotation of the same tokens), expectedGeneration+1 (new
   * tokens, or a dead verdict), or, with expectedGeneration 0, any generation (a record the store lost,
   * written back by a replica that still holds it).
   */
  compareAndSet(key: string, expectedGeneration: number, next: TokenRecord): Promise<CompareAndSetResult>;
  /** Takes the refresh lock of a credential for `ttlMs`; true when taken (or already held by `owner`). */
  acquireLock(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends a lock `owner` holds; false when it no longer holds it. */
  renewLock(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `owner` still holds it. */
  releaseLock(key: string, owner: string): Promise<void>;
  /**
   * Called with (key, generation) whenever a record changes, including by another process. Generation 0
   * means the record is gone (a Redis that restarted empty). The key "*" (generation -1) means any record
   * may have changed unseen, e.g. the store has just become reachable: every listener should re-read its own.
   */
  subscribe(listener: RecordChangeListener): () => void;
  close(): Promise<void>;
}
