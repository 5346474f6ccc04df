import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

export type ProviderKind = 'collaborate' | 'apiax' | 'v3';

export interface FakeProviderOptions {
  kind: ProviderKind;
  /** Default 3600. Fractions are allowed so tests can let tokens lapse in milliseconds. */
  accessTokenLifetimeSeconds?: number;
  /** Default: none; 0 also means no expiry. */
  refreshTokenLifetimeSeconds?: number;
  /** Token response body format; xml is only meaningful for collaborate. Default json. */
  format?: 'json' | 'xml';
  /** How expires_in is written. Default number. */
  expiresInAs?: 'number' | 'string' | 'epoch-seconds' | 'epoch-ms';
  /** v3: wrap as {"group_header":{...},"response":{...}}. Default false. */
  wrapped?: boolean;
  /** Default true: every refresh returns a new refresh token and the old one is spent. */
  rotateRefreshTokens?: boolean;
  /** Keycloak "revoke refresh token": reuse of a spent token kills the whole session. Default true for apiax and v3. */
  killSessionOnReuse?: boolean;
  /** Delay before answering the token endpoint. */
  tokenDelayMs?: number;
  /** Defaults 'client-id' / 'client-secret'; apiax: 'integration-api' and no secret. */
  clientId?: string;
  clientSecret?: string;
  /** apiax password grant. Defaults 'user' / 'pass'. */
  username?: string;
  password?: string;
  /** Codes accepted once for grant_type=authorization_code. */
  authorizationCodes?: string[];
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  /** Lowercased names, as node parsed them. */
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** Request trailers (chunked uploads); empty object when none. */
  trailers: NodeJS.Dict<string>;
}

export interface FakeProviderCounters {
  /** Every POST to the token endpoint. */
  tokenCalls: number;
  /** Successful refresh_token grants. */
  refreshGrants: number;
  /** refresh_token grants presenting an already-spent refresh token. */
  reuseAttempts: number;
  /** Token calls answered with invalid_grant (or v3's equivalent envelope). */
  invalidGrants: number;
  /** Requests to the resource API. */
  apiCalls: number;
  /** Resource API requests rejected (expired/invalid/missing token, or forced by setApiBehaviour). */
  apiRejections: number;
}

export type ApiBehaviour = 'normal' | 'always-reject' | 'reject-once';

export type ApiHandler = (req: RecordedRequest, res: ServerResponse) => void;

export interface FakeProvider {
  readonly kind: ProviderKind;
  /** e.g. http://127.0.0.1:12345 */
  readonly origin: string;
  /** Full URL of the (main) token endpoint. */
  readonly tokenUrl: string;
  /** Full URL the proxy's `target` should point at. */
  readonly apiBaseUrl: string;
  readonly counters: FakeProviderCounters;
  readonly apiRequests: RecordedRequest[];
  readonly tokenRequests: RecordedRequest[];
  /** Every access and refresh token minted so far, so tests can grep logs for leaks. */
  readonly issuedTokens: readonly string[];
  /** Mint a fresh valid refresh token in a new session (a seed). */
  issueRefreshToken(): string;
  /** Every access token issued so far becomes expired; later ones are not affected. */
  expireAccessTokens(): void;
  /** The next `count` token calls are answered with `status` and `body` before anything else is checked. */
  failNextTokenCalls(count: number, status: number, body?: string): void;
  setTokenDelay(ms: number): void;
  setApiBehaviour(b: ApiBehaviour): void;
  /** Runs after the token check passed, instead of the echo response. */
  setApiHandler(h: ApiHandler | null): void;
  close(): Promise<void>;
}
