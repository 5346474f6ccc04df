/**
 * What the token core reports, as an interface of its own: the admin layer implements it with Prometheus
 * (src/admin/metrics.ts), tests with anything. Tokens never import a metrics library.
 */

/** How a refresh attempt ended; `adopted`: another replica's newer record was taken instead of a token call. */
export type RefreshOutcome = 'success' | 'transient_error' | 'credential_dead' | 'client_rejected' | 'adopted';

/** accepted/rejected: the request was sent again with a newer token; no_new_token: there was none to send. */
export type ReplayOutcome = 'accepted' | 'rejected' | 'no_new_token';

export interface TokenMetrics {
  /** `latencySeconds` is undefined for `adopted` (no token call was made). */
  refreshEnded(upstream: string, outcome: RefreshOutcome, reason: string, latencySeconds: number | undefined): void;
  replayEnded(upstream: string, outcome: ReplayOutcome): void;
  credentialDead(upstream: string, dead: boolean): void;
  /** A new token record could not be stored (it is retried until it lands). */
  storeWriteFailed(upstream: string): void;
}
