/**
 * Every error this project raises on purpose carries a stable `code`, registered below with a one-line
 * meaning and, for errors answered over HTTP, the status it maps to. Codes are an interface: clients match
 * them in error bodies, operators in logs, so a code keeps its meaning once published. One small base
 * class (SidecarError) and one subclass per family.
 * Messages are written for the person operating the proxy and never contain a token, a refresh token,
 * a client secret or a request header value.
 */

export const ErrorRegistry = {
  // Answered over HTTP by the proxy, the admin listener or the injection webhook, as
  // {"error":{"code","message","requestId"}} (src/http/error-response.ts).
  ROUTE_NOT_FOUND: { status: 404, meaning: 'no upstream (or admin endpoint) is routed at this path' },
  BAD_REQUEST: { status: 400, meaning: 'the request is not valid HTTP/1.1' },
  BAD_REQUEST_TARGET: {
    status: 400,
    meaning: 'the request target is refused (dot segments, a fragment, CONNECT, a malformed absolute form)',
  },
  CLIENT_UNAUTHENTICATED: { status: 401, meaning: 'the client key is missing or not accepted' },
  METHOD_NOT_ALLOWED: { status: 405, meaning: 'the method is not allowed here' },
  REQUEST_TIMEOUT: { status: 408, meaning: 'the request headers or body stalled' },
  REVIEW_TOO_LARGE: { status: 413, meaning: 'the admission review is larger than the injection webhook reads' },
  URI_TOO_LONG: { status: 414, meaning: 'the request target is too long' },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'the request headers are too large' },
  REQUEST_BODY_ERROR: { status: 400, meaning: 'the request body could not be read' },
  BAD_REVIEW: { status: 400, meaning: 'the injection webhook got something other than a JSON admission.k8s.io/v1 AdmissionReview' },
  NOT_SUPPORTED: { status: 501, meaning: 'the proxy does not support this (protocol upgrades)' },
  UPSTREAM_UNREACHABLE: { status: 502, meaning: 'the upstream cannot be reached' },
  UPSTREAM_BAD_RESPONSE: { status: 502, meaning: 'the upstream sent a response that cannot be forwarded' },
  UPSTREAM_BODY_ERROR: {
    status: 502,
    meaning: 'the upstream response broke off while being forwarded (logged; the client sees a cut response)',
  },
  UPSTREAM_TLS_FAILED: {
    status: 502,
    meaning: 'the TLS handshake with the upstream failed (certificate not trusted, wrong name, client certificate refused)',
  },
  EGRESS_PROXY_FAILED: { status: 502, meaning: 'the egress proxy cannot be reached, wants credentials, or refused the tunnel' },
  UPSTREAM_TIMEOUT: { status: 504, meaning: 'the upstream did not answer in time' },
  UPSTREAM_QUEUE_FULL: { status: 503, meaning: 'too many requests are queued for this upstream' },
  UPSTREAM_QUEUE_TIMEOUT: { status: 503, meaning: 'waited too long for a connection to this upstream' },
  REPLAY_BUFFER_FULL: { status: 503, meaning: 'too many request bodies are buffered for a possible replay' },
  TOO_MANY_CONNECTIONS: { status: 503, meaning: 'the proxy already serves as many client connections as it may' },
  TOO_MANY_UPGRADES: { status: 503, meaning: 'the proxy already holds as many upgraded (WebSocket) connections as it may' },
  NO_USABLE_TOKEN: { status: 503, meaning: 'no usable token for this upstream (the store cannot be read yet)' },
  REFRESH_PENDING: { status: 503, meaning: 'a token refresh is under way and did not finish in time' },
  TOKEN_ENDPOINT_UNAVAILABLE: { status: 503, meaning: 'the token endpoint cannot be reached or keeps failing' },
  CREDENTIAL_DEAD: { status: 503, meaning: 'the token endpoint rejected the credential; a person must seed or log in again' },
  NEEDS_CREDENTIALS: { status: 503, meaning: 'the upstream has no credentials yet (configuration or store)' },
  SHUTTING_DOWN: { status: 503, meaning: 'the proxy is shutting down' },
  INTERNAL: { status: 500, meaning: 'a bug: something the code should never do happened (the message says what)' },

  // No HTTP status: these end a command, a start-up or a store operation, with the message for the operator.
  USAGE: { meaning: 'the command line is wrong' },
  CONFIG_INVALID: { meaning: 'the configuration file has problems (each listed with its path)' },
  TOKEN_REQUEST_FAILED: { meaning: 'a token request failed; its kind says whether to retry, stop, or ask for a new credential' },
  STORE_FAILED: { meaning: 'the token store failed (disk, network, refused credentials); retryable says whether waiting may help' },
  UNKNOWN_UPSTREAM: { meaning: 'the command names an upstream the configuration does not have' },
  STORE_OUT_OF_REACH: { meaning: 'the memory store lives inside the proxy process; a command cannot reach it' },
  NOT_A_REFRESH_TOKEN: { meaning: 'what came on stdin cannot be a refresh token (empty, spaces, control characters, too large)' },
  NO_REFRESH_TOKEN_GRANT: { meaning: 'seed or login named an upstream whose grant (client_credentials) uses no refresh token' },
  RECORD_LIVE: { meaning: 'seed or login refused to replace a live record without --force' },
  RECORD_CHANGED: { meaning: 'the record changed while the command wrote it (a running proxy refreshed); run it again' },
  LOGIN_NOT_CONFIGURED: { meaning: 'login lacks the client credentials, or the username and password, it needs' },
  LOGIN_SETUP_FAILED: { meaning: 'the login callback cannot be set up (listen address, redirect URI, authorize URL)' },
  LOGIN_NO_REDIRECT: { meaning: 'no browser redirect reached the login callback in time' },
  LOGIN_REDIRECT_REFUSED: { meaning: 'the browser redirect was refused (state mismatch, provider error, no code)' },
  LOGIN_GRANT_REFUSED: { meaning: 'the token endpoint refused the grant login sent' },
  LOGIN_NO_REFRESH_TOKEN: { meaning: 'the token endpoint issued no refresh token, so login stored nothing (the proxy could not renew it)' },
  ADMIN_UNREACHABLE: { meaning: 'no running proxy answered at the admin URL, or it answered with an error' },
} as const satisfies Record<string, { readonly status?: number; readonly meaning: string }>;

export type RegisteredCode = keyof typeof ErrorRegistry;

/** The codes answered over HTTP: those registered with a status. */
export type ErrorCode = { [C in RegisteredCode]: (typeof ErrorRegistry)[C] extends { status: number } ? C : never }[RegisteredCode];

/** The base of every error this project throws on purpose: `code` is stable and registered in ErrorRegistry. */
export class SidecarError extends Error {
  readonly code: RegisteredCode;

  constructor(code: RegisteredCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SidecarError';
    this.code = code;
  }
}

/** A wrong command line: the message says what is wrong; the caller prints it with the usage. */
export class UsageError extends SidecarError {
  declare readonly code: 'USAGE';

  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/** A command (seed, login, status) could not do what was asked; the message says why and what to do. */
export class CommandError extends SidecarError {
  constructor(code: RegisteredCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CommandError';
  }
}

/** An error answered over HTTP (proxy, admin listener, injection webhook), with the status its code maps to. */
export class ProxyError extends SidecarError {
  declare readonly code: ErrorCode;
  readonly status: number;
  /** Sent as Retry-After (whole seconds) with 503s that a client may simply try again. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(code, message, options);
    this.name = 'ProxyError';
    this.status = ErrorRegistry[code].status;
    this.retryAfterSeconds = options?.retryAfterSeconds === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfterSeconds));
  }
}

/** A problem with the configuration: every problem is listed, each with its path in the file. */
export class ConfigError extends SidecarError {
  declare readonly code: 'CONFIG_INVALID';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
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

export class TokenEndpointError extends SidecarError {
  declare readonly code: 'TOKEN_REQUEST_FAILED';
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
    super('TOKEN_REQUEST_FAILED', message, { cause: details.cause });
    this.name = 'TokenEndpointError';
    this.kind = kind;
    this.httpStatus = details.httpStatus;
    this.providerCode = details.providerCode;
    this.retryAfterMs = details.retryAfterMs;
    this.grantMayBeSpent = details.grantMayBeSpent ?? false;
  }
}

/** The token store failed (disk, network); the message names the location but never a token. */
export class StoreError extends SidecarError {
  declare readonly code: 'STORE_FAILED';
  /** Trying again later may work (unreachable, timed out); false for what only a person can fix (wrong password or key). */
  readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('STORE_FAILED', message, options);
    this.name = 'StoreError';
    this.retryable = options?.retryable ?? false;
  }
}
