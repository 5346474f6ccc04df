/**
 * One upstream's credential as the request path sees it: the token to attach, what to do when the
 * upstream rejects it, and how a replay went. The token manager implements it; the proxy knows nothing else
 * of the token core.
 */

export interface CurrentToken {
  readonly generation: number;
  readonly expiresAt: number;
  /** The ready-made header value, so the request path does no string work. */
  readonly authorization: string;
}

/** A replay's outcome: sent with `generation` and accepted or not, or not made for want of a newer token. */
export type ReplayReport = { readonly generation: number; readonly accepted: boolean } | 'no_new_token';

export interface Credential {
  /** The token to attach, if one is usable right now. Synchronous, from memory: the request path. */
  current(): CurrentToken | undefined;
  /** A usable token, waiting a bounded time for a refresh. Throws a 503 ProxyError with Retry-After. */
  acquire(): Promise<CurrentToken>;
  /**
   * The upstream rejected `generation`. True: hold the response back, a replay is coming. `replayable` says
   * whether the request body can be sent again; if not, a fresh token is still prepared for the next request.
   */
  onRejection(generation: number, replayable: boolean): boolean;
  /** The token to replay with, or undefined when the rejection stands. Throws a 503 ProxyError after a bounded wait. */
  replacementFor(generation: number): Promise<CurrentToken | undefined>;
  replayEnded(report: ReplayReport): void;
}
