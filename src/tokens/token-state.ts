/**
 * The lifecycle of one credential in this replica, as one state with its allowed transitions in one
 * table, so that "what can happen next" reads in one place. Whether the held access token is still
 * usable is a matter of the clock, not of the state: `valid` can hold a token that has just expired
 * (the scheduled refresh normally comes first), and `refreshing` or `unavailable` can still serve one.
 */
export type TokenState =
  /** The stored record has not been read yet (the store may be unreachable). */
  | 'loading'
  /** A record without a usable access token (a seed, an expired pair) and no refresh running. */
  | 'empty'
  /** A token pair, nothing under way; the next refresh is scheduled. */
  | 'valid'
  /** A refresh runs (single-flight). */
  | 'refreshing'
  /**
   * The last refresh could not finish: the token endpoint is out of reach (retried with backoff), or
   * another replica is refreshing (its record is awaited). `unavailableBecause` says which.
   */
  | 'unavailable'
  /** The token endpoint rejected the credential for good; only a new seed revives it. */
  | 'dead'
  /** Nothing to refresh with: credentials missing from the config, or no refresh token yet. */
  | 'needs_credentials'
  | 'stopped';

const ANY_RECORD: readonly TokenState[] = ['empty', 'valid', 'dead', 'needs_credentials'];

/** Every state may also go to `stopped`; adopting a record (another replica's, a seed) can lead to any of ANY_RECORD. */
const NEXT: Readonly<Record<TokenState, readonly TokenState[]>> = {
  loading: [...ANY_RECORD, 'loading'],
  empty: [...ANY_RECORD, 'refreshing'],
  valid: [...ANY_RECORD, 'refreshing'],
  refreshing: [...ANY_RECORD, 'unavailable'],
  unavailable: [...ANY_RECORD, 'refreshing', 'unavailable'],
  dead: [...ANY_RECORD],
  needs_credentials: [...ANY_RECORD, 'refreshing'],
  stopped: [],
};

export function canMove(from: TokenState, to: TokenState): boolean {
  return to === 'stopped' || NEXT[from].includes(to);
}
