/** What /status, /readyz and the `status` command say about one upstream's credential. No token ever. */
export interface TokenStatus {
  readonly upstream: string;
  /** How the upstream gets its tokens: a refresh token, or the client credentials alone (auth.grant). */
  readonly grant?: 'refresh_token' | 'client_credentials';
  readonly state: 'starting' | 'ok' | 'refreshing' | 'expired' | 'needs_credentials' | 'credential_dead';
  /** Why the upstream is not ready, with the fix where there is one. */
  readonly reason: string | undefined;
  readonly generation: number;
  readonly accessTokenFingerprint: string | undefined;
  readonly refreshTokenFingerprint: string | undefined;
  readonly expiresInSeconds: number | undefined;
  readonly refreshTokenExpiresInSeconds: number | undefined;
  readonly obtainedAt: string | undefined;
  /** This replica is refreshing now (the state can still be ok: the current token serves meanwhile). */
  readonly refreshing: boolean;
  /**
   * The stored record says a replica sent its refresh token and has not stored the result yet (the
   * record's in-flight mark): who, since when, and until when no other replica sends that token.
   */
  readonly refreshTokenInFlight?: { readonly by: string; readonly since: string; readonly blocksUntil: string | undefined };
  readonly lastRefresh: LastRefresh | undefined;
  /** What this replica did in the last hour (to the minute). Other replicas count their own. */
  readonly lastHour: RecentActivity;
  readonly store: string;
  /** The current token pair is not in the store yet (the write is being retried); only in memory until then. */
  readonly storeWritePending?: true;
}

export interface LastRefresh {
  readonly at: string;
  readonly outcome: string;
  readonly reason: string;
  readonly latencyMs: number;
  readonly error?: string;
}

export interface RecentActivity {
  /** Refresh attempts by this replica, whatever their outcome; taking another replica's newer token is not one. */
  readonly refreshes: number;
  readonly failedRefreshes: number;
  /** Requests sent a second time with a newer token after the upstream rejected the first. */
  readonly replays: number;
  /** Replays the upstream rejected too. */
  readonly rejectedReplays: number;
}
