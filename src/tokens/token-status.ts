/** What /status, /readyz and the `status` command say about one upstream's credential. No token ever. */
export interface TokenStatus {
  readonly upstream: string;
  readonly state: 'starting' | 'ok' | 'refreshing' | 'expired' | 'needs_credentials' | 'credential_dead';
  /** Why the upstream is not ready, with the fix where there is one. */
  readonly reason: string | undefined;
  readonly generation: number;
  readonly accessTokenFingerprint: string | undefined;
  readonly refreshTokenFingerprint: string | undefined;
  readonly expiresInSeconds: number | undefined;
  readonly refreshTokenExpiresInSeconds: number | undefined;
  readonly obtainedAt: string | undefined;
  readonly lastRefresh:
    | { readonly at: string; readonly outcome: string; readonly reason: string; readonly latencyMs: number; readonly error?: string }
    | undefined;
  readonly store: string;
  /** The current token pair is not in the store yet (the write is being retried); only in memory until then. */
  readonly storeWritePending?: true;
}
