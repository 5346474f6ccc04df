import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

/** oauth2: a generic RFC 6749 server (Basic client auth), the only one offering client_credentials. */
export type ProviderKind = 'collaborate' | 'apiax' | 'v3' | 'oauth2';

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
  /** Defaults 'client-id' / 'client-secret'; apiax: 'integration-api' and no secret. oauth2: `clientSecret: null` is a public client. */
  clientId?: string;
  clientSecret?: string | null;
  /** apiax password grant. Defaults 'user' / 'pass'. */
  username?: string;
  password?: string;
  /** Codes accepted once for grant_type=authorization_code. */
  authorizationCodes?: string[];
  /**
   * Serve HTTPS instead of HTTP (origin https://127.0.0.1:port) with this certificate and key (PEM). With
   * `requestCert`, a client certificate signed by `ca` is required (mutual TLS); `ca` is unused otherwise.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
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

/** Counts of the client-authentication side (kept apart from FakeProviderCounters, which tests compare whole). */
export interface FakeProviderClientCounters {
  /** Successful client_credentials grants (oauth2): each one an access token, no refresh token. */
  clientCredentialsGrants: number;
  /** Token calls refused with invalid_client in the body (the client authentication failed). */
  invalidClients: number;
}

export type ApiBehaviour = 'normal' | 'always-reject' | 'reject-once';

export type ApiHandler = (req: RecordedRequest, res: ServerResponse) => void;

/** Token requests held by holdTokenRequests. */
export interface TokenGate {
  /** Token requests that arrived since the gate was set (held, or let go since). */
  arrivals(): number;
  /** Resolves once `count` token requests have arrived since the gate was set; rejects after `timeoutMs` (default 10 s). */
  waitForArrivals(count: number, timeoutMs?: number): Promise<void>;
  /** Stops holding; every held request is processed (its refresh token spent) and answered, even if its client has gone. */
  release(): void;
  /** Stops holding; every held request is dropped unprocessed (connection destroyed, nothing spent). */
  discard(): void;
}

export interface FakeProvider {
  readonly kind: ProviderKind;
  /** e.g. http://127.0.0.1:12345 (https:// with the `tls` option) */
  readonly origin: string;
  /** Full URL of the (main) token endpoint. */
  readonly tokenUrl: string;
  /** Full URL the proxy's `target` should point at. */
  readonly apiBaseUrl: string;
  readonly counters: FakeProviderCounters;
  readonly clientCounters: FakeProviderClientCounters;
  readonly apiRequests: RecordedRequest[];
  readonly tokenRequests: RecordedRequest[];
  /** Every access and refresh token minted so far, so tests can grep logs for leaks. */
  readonly issuedTokens: readonly string[];
  /** Mint a fresh valid refresh token in a new session (a seed). */
  issueRefreshToken(): string;
  /** Every access token issued so far becomes expired; later ones are not affected. */
  expireAccessTokens(): void;
  /**
   * The next `count` token calls are answered with `status` and `body` before anything else is checked (no
   * token is spent): an overloaded gateway, a WAF page, a redirect to a login page. The Content-Type is
   * guessed from the body unless `headers` sets it; `headers` also adds e.g. Location or Retry-After.
   * `count` 0 ends an outage set up earlier.
   */
  failNextTokenCalls(count: number, status: number, body?: string, headers?: Record<string, string>): void;
  /**
   * From now on token requests are held after they arrived (counted in tokenCalls, recorded, `onArrival`
   * called) and before the provider looks at them, until the returned gate releases or discards them.
   */
  holdTokenRequests(onArrival?: (req: RecordedRequest) => void): TokenGate;
  /**
   * How many refresh_token grants the provider processed with this refresh token (spent or not). A request
   * failed by failNextTokenCalls or discarded at the gate does not count: the provider never looked at it.
   */
  timesPresented(refreshToken: string): number;
  setTokenDelay(ms: number): void;
  setApiBehaviour(b: ApiBehaviour): void;
  /** Runs after the token check passed, instead of the echo response. */
  setApiHandler(h: ApiHandler | null): void;
  close(): Promise<void>;
}
