/**
 * Turns a token manager's state into what /status, /readyz and `oauth-sidecar status` show: the state
 * word, why it is not ready, and fingerprints instead of tokens. Pure, so the rules read in one place.
 */
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { RefreshHistory } from './refresh-history.js';
import type { TokenStatus } from './token-status.js';

export interface TokenState {
  readonly upstream: string;
  /** How the upstream gets its tokens (auth.grant). */
  readonly grant?: TokenStatus['grant'];
  readonly record: TokenRecord | undefined;
  /** The token the request path attaches, if any (it may have expired since). */
  readonly token: { readonly expiresAt: number } | undefined;
  /** Why this upstream cannot get a token without someone's help, if so. */
  readonly needsCredentials: string | undefined;
  /** Why the stored record cannot be read yet (the store is unreachable). */
  readonly storeProblem: string | undefined;
  /** Why the last refresh could not finish (token endpoint out of reach, another replica refreshing). */
  readonly unavailable?: string | undefined;
  readonly refreshing: boolean;
  readonly history: RefreshHistory;
  readonly storeWritePending: boolean;
  readonly store: string;
}

export function describeTokenState(state: TokenState, now = Date.now()): TokenStatus {
  const { record, token } = state;
  const usable = token !== undefined && token.expiresAt > now;
  return {
    upstream: state.upstream,
    ...(state.grant ? { grant: state.grant } : {}),
    state: stateWord(state, usable),
    reason: notReadyReason(state, usable),
    generation: record?.generation ?? 0,
    accessTokenFingerprint: record?.accessToken ? fingerprint(record.accessToken) : undefined,
    refreshTokenFingerprint: record?.refreshToken ? fingerprint(record.refreshToken) : undefined,
    expiresInSeconds: token ? Math.round((token.expiresAt - now) / 1000) : undefined,
    refreshTokenExpiresInSeconds: record?.refreshTokenExpiresAt ? Math.round((record.refreshTokenExpiresAt - now) / 1000) : undefined,
    obtainedAt: record?.obtainedAt ? new Date(record.obtainedAt).toISOString() : undefined,
    refreshing: state.refreshing,
    ...inFlightMark(record),
    lastRefresh: state.history.last,
    lastHour: state.history.lastHour(now),
    store: state.store,
    ...(state.storeWritePending ? { storeWritePending: true } : {}),
  };
}

function stateWord(state: TokenState, usable: boolean): TokenStatus['state'] {
  if (state.record?.dead) return 'credential_dead';
  if (usable) return 'ok';
  if (state.needsCredentials) return 'needs_credentials';
  if (state.refreshing) return 'refreshing';
  return state.record ? 'expired' : 'starting';
}

function notReadyReason(state: TokenState, usable: boolean): string | undefined {
  if (state.record?.dead) return state.record.dead.reason;
  if (usable) return undefined;
  if (state.needsCredentials) return state.needsCredentials;
  if (state.storeProblem) return state.storeProblem;
  if (state.unavailable) return state.unavailable;
  return state.history.last?.error ?? (state.refreshing ? 'first token being fetched' : 'no token yet');
}

/** The record's in-flight mark, as the status shows it (no token, only who and when). */
export function inFlightMark(record: TokenRecord | undefined): Pick<TokenStatus, 'refreshTokenInFlight'> {
  const mark = record?.refreshInFlight;
  if (!mark) return {};
  const blocksUntil = mark.expiresAt === undefined ? undefined : new Date(mark.expiresAt).toISOString();
  return { refreshTokenInFlight: { by: mark.owner, since: new Date(mark.since).toISOString(), blocksUntil } };
}
