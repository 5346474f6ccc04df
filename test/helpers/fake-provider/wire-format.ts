import type { Reply } from './http-io.js';
import type { ResolvedOptions } from './options.js';
import type { GrantFailure, IssuedPair } from './token-store.js';
import type { RecordedRequest } from './types.js';

export type Params = ReadonlyMap<string, string>;

/** Why the token endpoint refused a grant; 'bad-user-credentials' only arises from apiax's password grant. */
export type GrantError = GrantFailure | 'bad-user-credentials';

export type RequestError = 'invalid_request' | 'unsupported_grant_type';

/** Why the resource API refused a request; 'expired' also covers rejections forced by setApiBehaviour. */
export type ApiRejection = 'missing' | 'invalid' | 'expired';

export interface ApiEcho {
  ok: true;
  method: string;
  path: string;
  query: string;
  bodyLength: number;
}

/** Everything that differs between the providers on the wire. */
export interface WireFormat {
  readonly tokenPaths: readonly string[];
  /** Path prefix of the resource API (no trailing slash). */
  readonly apiBasePath: string;
  /** v3 also takes a JSON token request body; the others only form encoding. */
  readonly acceptsJsonBody: boolean;
  readonly supportsPasswordGrant: boolean;
  /** Checks made before the body is looked at (v3's API gateway; Collaborate's refusal of Basic auth). */
  checkHeaders(req: RecordedRequest, tokenPath: string): Reply | null;
  /** Client credentials carried in the body (oauth2 also looks at the request's Basic header). */
  checkBodyClient(params: Params, req: RecordedRequest): Reply | null;
  tokenSuccess(pair: IssuedPair): Reply;
  /** The answer to a client_credentials grant (an access token, no refresh token); absent where the grant is not offered. */
  clientCredentialsSuccess?(accessToken: string): Reply;
  grantError(reason: GrantError): Reply;
  requestError(error: RequestError, description: string): Reply;
  apiRejection(reason: ApiRejection): Reply;
  apiSuccess(echo: ApiEcho, req: RecordedRequest): Reply;
}

export type WireFormatFactory = (options: ResolvedOptions) => WireFormat;

/** How expires_in is written; the epoch variants imitate apiax's "JAVA_TIMESTAMP" wording. */
export function formatExpiresIn(options: ResolvedOptions): number | string {
  const lifetime = options.accessLifetimeSeconds;
  switch (options.expiresInAs) {
    case 'number':
      return lifetime;
    case 'string':
      return String(lifetime);
    case 'epoch-seconds':
      // Floor, so a client computing the expiry never believes in more time than it has.
      return Math.floor(Date.now() / 1000 + lifetime);
    case 'epoch-ms':
      return Math.floor(Date.now() + lifetime * 1000);
  }
}
