/**
 * Every error the proxy itself produces, with a stable code and the HTTP status it maps to.
 * Messages are written for the person operating the proxy and never contain a token, a refresh token,
 * a client secret or a request header value.
 */

export const ErrorCodes = {
  ROUTE_NOT_FOUND: { status: 404, title: 'no upstream is routed at this path' },
  BAD_REQUEST: { status: 400, title: 'malformed request' },
  BAD_REQUEST_TARGET: { status: 400, title: 'request target refused' },
  CLIENT_UNAUTHENTICATED: { status: 401, title: 'client key missing or not accepted' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'method not allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'the request body stalled' },
  URI_TOO_LONG: { status: 414, title: 'request target too long' },
  HEADERS_TOO_LARGE: { status: 431, title: 'request headers too large' },
  REQUEST_BODY_ERROR: { status: 400, title: 'request body could not be read' },
  NOT_SUPPORTED: { status: 501, title: 'not supported' },
  UPSTREAM_UNREACHABLE: { status: 502, title: 'upstream unreachable' },
  UPSTREAM_BAD_RESPONSE: { status: 502, title: 'upstream sent a bad response' },
  UPSTREAM_BODY_ERROR: { status: 502, title: 'upstream response broke off' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'upstream timed out' },
  UPSTREAM_QUEUE_FULL: { status: 503, title: 'too many requests queued for this upstream' },
  UPSTREAM_QUEUE_TIMEOUT: { status: 503, title: 'waited too long for a connection to this upstream' },
  REPLAY_BUFFER_FULL: { status: 503, title: 'too many request bodies buffered' },
  TOO_MANY_CONNECTIONS: { status: 503, title: 'too many client connections' },
  NO_USABLE_TOKEN: { status: 503, title: 'no usable token for this upstream' },
  REFRESH_PENDING: { status: 503, title: 'a token refresh is under way' },
  TOKEN_ENDPOINT_UNAVAILABLE: { status: 503, title: 'the token endpoint cannot be reached' },
  CREDENTIAL_DEAD: { status: 503, title: 'credential rejected by the token endpoint' },
  NEEDS_CREDENTIALS: { status: 503, title: 'upstream needs credentials' },
  SHUTTING_DOWN: { status: 503, title: 'proxy is shutting down' },
  INTERNAL: { status: 500, title: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** Codes of errors that are not HTTP answers (command line, configuration, stores, …), each with its meaning. */
export const NonHttpErrorCodes = {
  USAGE: { title: 'the command line is wrong' },
} as const;

/** Every error code in use, with its HTTP status where it has one. */
export const ErrorRegistry: Readonly<Record<RegisteredCode, { readonly status?: number; readonly title: string }>> = {
  ...ErrorCodes,
  ...NonHttpErrorCodes,
};

export type RegisteredCode = ErrorCode | keyof typeof NonHttpErrorCodes;

/** The base of every error this project throws on purpose: `code` is stable and registered in ErrorRegistry. */
export class SidecarError extends Error {
  readonly code: RegisteredCode;

  constructor(code: RegisteredCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SidecarError';
    this.code = code;
  }
}

/** A wrong command line: the message says what is wrong; the caller prints it with the usage and exits 2. */
export class UsageError extends SidecarError {
  declare readonly code: 'USAGE';

  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Sent as Retry-After (whole seconds) with 503s that a client may simply try again. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.retryAfterSeconds = options?.retryAfterSeconds === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfterSeconds));
  }
}

/** A problem with the configuration: every problem is listed, each with its path in the file. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Why a token request failed, in the terms the token manager acts on. Only an OAuth error answer is a
 * verdict on the credential; anything else (a WAF page, a redirect, a 5xx, a reset) is an outage.
 */
export type TokenFailureKind =
  /** Network error, timeout, 5xx, 429, a non-OAuth 4xx or 3xx, an unreadable 2xx: keep the token, retry with backoff. */
  | 'transient'
  /** An OAuth `invalid_grant` (or a preset's documented dead signal): the refresh token is spent, expired or revoked. */
  | 'credential_dead'
  /** An OAuth `invalid_client` / `unauthorized_client`: the client configuration is wrong. Stop refreshing. */
  | 'client_rejected';

export class TokenEndpointError extends Error {
  readonly kind: TokenFailureKind;
  readonly httpStatus: number | undefined;
  /** The provider's own error code (e.g. `invalid_grant`, `error.token.invalid`), safe to log. */
  readonly providerCode: string | undefined;
  /** Retry-After from a 429/503, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /**
   * The grant may have been processed although no usable answer came back (a timeout, a reset, a gateway
   * 5xx, an unreadable 2xx): a refresh token sent in it must be taken as possibly spent.
   */
  readonly grantMayBeSpent: boolean;

  constructor(
    kind: TokenFailureKind,
    message: string,
    details: { httpStatus?: number; providerCode?: string; retryAfterMs?: number; grantMayBeSpent?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'TokenEndpointError';
    this.kind = kind;
    this.httpStatus = details.httpStatus;
    this.providerCode = details.providerCode;
    this.retryAfterMs = details.retryAfterMs;
    this.grantMayBeSpent = details.grantMayBeSpent ?? false;
  }
}

/** The token store failed (disk, network); the message names the location but never a token. */
export class StoreError extends Error {
  /** Trying again later may work (unreachable, timed out); false for what only a person can fix (wrong password or key). */
  readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    this.retryable = options?.retryable ?? false;
  }
}
