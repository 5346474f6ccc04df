/**
 * The shape of proxy.yaml: strict (unknown keys are errors), with defaults, and the TypeScript types
 * inferred from it. Secret-bearing keys also accept a `…File` twin; those are resolved before this
 * schema runs (see load.ts), so the schema only sees the values.
 */
import { z } from 'zod';
import { COMMAND_TIMEOUT_MS } from './redis-limits.js';

const hostPort = z
  .string()
  // abort: a value that is not host:port at all gets one problem, not a second one about its port.
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:8080', abort: true })
  .refine((value) => {
    const port = Number(value.slice(value.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be 0-65535');

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

/** The authorize-URL parameters `login` sets itself: auth.authorizeParams may add others, never these. */
export const LOGIN_OWNED_PARAMS: readonly string[] = [
  'response_type',
  'client_id',
  'redirect_uri',
  'state',
  'code_challenge',
  'code_challenge_method',
  'scope',
];

const millis = (fallback: number) => z.number().int().positive().default(fallback);

/**
 * TLS towards one peer (an upstream or its token endpoint). File paths are relative to the config file;
 * the files are read at start-up and again every reloadIntervalMs, so a rotated certificate is used
 * without a restart. `passphraseFile` works like every other `…File` secret.
 */
const tlsSchema = z
  .strictObject({
    /** PEM bundle of the CAs trusted for this peer, instead of the system store and NODE_EXTRA_CA_CERTS. */
    caFile: z.string().min(1).optional(),
    /** Client certificate (PEM, leaf first, then intermediates) and its key for mutual TLS. */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    passphrase: z.string().optional(),
    /** The name sent in SNI and checked in the peer's certificate, when it differs from the URL's host. */
    servername: z.string().min(1).optional(),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    reloadIntervalMs: z.number().int().min(1_000).default(60_000),
  })
  .superRefine((tls, context) => {
    if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
      context.addIssue({ code: 'custom', path: [tls.certFile ? 'keyFile' : 'certFile'], message: 'certFile and keyFile go together' });
    if (tls.passphrase !== undefined && !tls.keyFile)
      context.addIssue({ code: 'custom', path: ['passphrase'], message: 'a passphrase needs a keyFile' });
  });

/**
 * The egress proxy for one peer: `direct` ignores HTTPS_PROXY/HTTP_PROXY, a URL (or `url` with `username`
 * and `password`/`passwordFile`) replaces them. Unset: the environment decides, NO_PROXY included.
 */
const proxySchema = z.union([
  z.literal('direct'),
  httpUrl,
  z.strictObject({ url: httpUrl, username: z.string().min(1).optional(), password: z.string().optional() }),
]);

export const presetNames = ['collaborate', 'apiax', 'v3', 'oauth2'] as const;

const authSchema = z.strictObject({
  preset: z.enum(presetNames),
  tokenUrl: httpUrl,
  /** Empty means "not provided yet": the upstream starts in the needs-credentials state. */
  clientId: z.string().optional(),
  clientSecret: z.string().optional(),
  /** Seed: used only when the store holds no record for this upstream yet. */
  refreshToken: z.string().optional(),
  /** Password grant (Apiax): used for the first token, and when the refresh token has died. */
  username: z.string().optional(),
  password: z.string().optional(),
  /** v3 decoupled flow: the TPP token sent as `Authorization: Bearer` to the token endpoint. */
  tppToken: z.string().optional(),
  /** Where client credentials go; the preset chooses unless set. */
  clientAuth: z.enum(['body', 'basic', 'headers', 'none']).optional(),
  /** Token request body encoding; the preset chooses unless set (v3 also accepts json). */
  bodyEncoding: z.enum(['form', 'json']).optional(),
  scope: z.string().optional(),
  /**
   * Where a person authorizes for `oauth-sidecar login` (authorization-code flow). Derived from tokenUrl for
   * collaborate and v3 when unset; setting it also gives apiax and oauth2 a browser login.
   */
  authorizeUrl: httpUrl.optional(),
  /**
   * Extra query parameters for the authorize URL (`login`), e.g. `{ audience: …, acr_values: … }`. They cannot
   * replace the ones login owns (response_type, client_id, redirect_uri, state, code_challenge…).
   */
  authorizeParams: z
    .record(z.string().regex(/^[A-Za-z0-9._~-]+$/, 'must be a plain parameter name'), z.string())
    .superRefine((params, context) => {
      for (const name of Object.keys(params).filter((key) => LOGIN_OWNED_PARAMS.includes(key)))
        context.addIssue({
          code: 'custom',
          path: [name],
          message: `login sets ${name} itself${name === 'scope' ? ' (from auth.scope)' : ''}; remove it`,
        });
    })
    .default({}),
  /**
   * How tokens are obtained: `refresh_token` (every preset: a refresh token from the store, the seed, login or
   * seed) or `client_credentials` (generic oauth2 only: the client id and secret get a token, no refresh token).
   */
  grant: z.enum(['refresh_token', 'client_credentials']).default('refresh_token'),
  /** TLS and egress proxy for the token endpoint, when they differ from the upstream's (e.g. a separate identity provider). */
  tls: tlsSchema.optional(),
  proxy: proxySchema.optional(),
  /** Refresh early: when this fraction of the lifetime has passed or `earlyRefreshSeconds` before expiry, whichever is earlier. */
  earlyRefreshFraction: z.number().gt(0).lt(1).default(0.8),
  earlyRefreshSeconds: z.number().int().nonnegative().default(60),
  tokenRequestTimeoutMs: millis(10_000),
  /** How long a request waits for a token refresh before it gets a 503 with Retry-After. */
  tokenWaitTimeoutMs: millis(5_000),
  /**
   * The refresh lock is a lease of this length, renewed every third of it for as long as its holder works
   * (token request, commit, commit retries): a holder that dies is replaced within this time.
   */
  lockLeaseMs: z.number().int().min(1_000).max(60_000).default(6_000),
  /**
   * How long another replica's "refresh token in flight" mark blocks this replica from sending that refresh
   * token. It covers a holder whose link to the store stalls right after it spent the token; only a mark
   * older than this is taken as left by a holder that vanished (and its token as probably spent).
   */
  inFlightMarkTtlMs: z.number().int().min(1_000).default(120_000),
  /**
   * When the shared store is unreachable, refresh anyway (without the cross-replica lock)? Off by default:
   * all three presets rotate refresh tokens, and two replicas refreshing at once would kill the credential.
   */
  refreshWithoutLock: z.boolean().default(false),
});

export const upstreamSchema = z.strictObject({
  target: httpUrl,
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'must start with / and use plain path characters')
    .optional(),
  auth: authSchema,
  replayOn: z.array(z.number().int().min(400).max(599)).optional(),
  stripHeaders: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')).default([]),
  maxReplayBodyBytes: z
    .number()
    .int()
    .nonnegative()
    .default(1024 * 1024),
  connectTimeoutMs: millis(5_000),
  headersTimeoutMs: millis(60_000),
  bodyIdleTimeoutMs: millis(60_000),
  /** Upper bound on pooled keep-alive connections to this upstream. */
  maxConnections: z.number().int().positive().default(128),
  /** Requests waiting for a free connection beyond maxConnections; more get a 503. */
  maxQueuedRequests: z.number().int().nonnegative().default(1024),
  /** How long a request may wait for a free connection before it gets a 503. */
  queueTimeoutMs: millis(10_000),
  /**
   * The upstream's Set-Cookie: `scope` confines it to the route (Path under /<upstream>, Domain dropped),
   * `strip` removes it, `pass` forwards it untouched. All upstreams share one origin from the app's side.
   */
  cookies: z.enum(['scope', 'strip', 'pass']).default('scope'),
  /** TLS and egress proxy for the target; they also apply to the token endpoint unless auth.tls / auth.proxy are set. */
  tls: tlsSchema.optional(),
  proxy: proxySchema.optional(),
  /** Upgraded (WebSocket) connections to this upstream: closed after this much silence both ways, and at this age. */
  websocket: z
    .strictObject({
      idleTimeoutMs: millis(300_000),
      maxLifetimeMs: millis(24 * 3_600_000),
    })
    .prefault({}),
});

const redisAddress = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });

const redisStoreSchema = z
  .strictObject({
    type: z.literal('redis'),
    /** redis://[user:password@]host:port/db or rediss:// for TLS. */
    url: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'expected a redis:// or rediss:// URL')
      .optional(),
    /** Redis Sentinel: the sentinels and the master group name. */
    sentinels: z.array(redisAddress).min(1).optional(),
    name: z.string().min(1).optional(),
    /** Redis Cluster start-up nodes. */
    cluster: z.array(redisAddress).min(1).optional(),
    /** Data-node credentials for sentinels/cluster (with url, put them in the URL); `passwordFile` also works. */
    username: z.string().optional(),
    password: z.string().optional(),
    keyPrefix: z
      .string()
      .regex(/^[^{}\s]*$/, 'must not contain braces or spaces (they delimit the hash tag)')
      .default('oauth-sidecar:'),
    /** 32 bytes as 64 hex digits or base64: token records are AES-256-GCM encrypted at rest. `encryptionKeyFile` also works. */
    encryptionKey: z.string().optional(),
    /** Bound on one Redis command; a store operation fails within about twice this. */
    commandTimeoutMs: z.number().int().min(COMMAND_TIMEOUT_MS.min).max(COMMAND_TIMEOUT_MS.max).default(COMMAND_TIMEOUT_MS.default),
  })
  .superRefine((store, context) => {
    const given = [store.url, store.sentinels, store.cluster].filter((value) => value !== undefined).length;
    if (given !== 1) context.addIssue({ code: 'custom', message: 'set exactly one of url, sentinels (with name) or cluster' });
    if (store.sentinels && !store.name)
      context.addIssue({ code: 'custom', path: ['name'], message: 'sentinels need the master group name' });
  });

const storeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: z.string().min(1).default('./data/tokens.json') }),
  z.strictObject({ type: z.literal('memory') }),
  redisStoreSchema,
]);

export const configSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:8080'),
  /** Admin listener for healthz, readyz, metrics and status; "off" disables it. */
  admin: z.union([hostPort, z.literal('off')]).default('127.0.0.1:9901'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      accessLog: z.boolean().default(true),
    })
    .prefault({}),
  store: storeSchema.prefault({ type: 'file' }),
  /** How long in-flight requests may take to finish after SIGTERM/SIGINT. */
  drainTimeoutMs: millis(10_000),
  /** Bounds that keep memory and sockets in check whatever clients do. */
  limits: z
    .strictObject({
      /** Open client connections on the proxy listener; more are refused with a 503. */
      maxClientConnections: z.number().int().positive().default(1024),
      /** Longest silence inside a request body before the client gets a 408. */
      clientBodyIdleTimeoutMs: millis(30_000),
      /** Request bodies buffered for a possible replay, all requests together; beyond it a 503. */
      maxBufferedBodyBytes: z
        .number()
        .int()
        .positive()
        .default(64 * 1024 * 1024),
      /** Open upgraded (WebSocket) connections, all upstreams together; more handshakes get a 503. */
      maxUpgradedConnections: z.number().int().positive().default(512),
    })
    .prefault({}),
  /**
   * Config reload without a restart, on SIGHUP and when the file changes (checked every intervalMs: a
   * Kubernetes ConfigMap volume swaps a symlink, which file watchers can miss). `watch: false` leaves SIGHUP.
   */
  reload: z
    .strictObject({
      watch: z.boolean().default(true),
      intervalMs: z.number().int().min(200).default(2_000),
    })
    .prefault({}),
  /**
   * Inbound client authentication: clients send one of these keys in `header` (removed before forwarding).
   * Keys are stored as SHA-256 hex digests (printf %s "$KEY" | sha256sum). Required for a non-loopback listen.
   */
  inboundAuth: z
    .strictObject({
      header: z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')
        .default('x-sidecar-key'),
      keys: z
        .array(
          z.strictObject({
            name: z.string().min(1),
            sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (sha256sum)'),
          }),
        )
        .default([]),
    })
    .prefault({}),
  /** Listen beyond loopback without inbound authentication: anyone who reaches the port uses the credentials. */
  allowUnauthenticatedClients: z.boolean().default(false),
  upstreams: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'upstream names are lowercase letters, digits, - and _'), upstreamSchema)
    .refine((upstreams) => Object.keys(upstreams).length > 0, 'at least one upstream is required'),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawUpstream = z.infer<typeof upstreamSchema>;
export type RawAuth = z.infer<typeof authSchema>;
export type PresetName = (typeof presetNames)[number];
export type RawTls = z.infer<typeof tlsSchema>;
export type RawProxy = z.infer<typeof proxySchema>;
export type RawRedisStore = z.infer<typeof redisStoreSchema>;
