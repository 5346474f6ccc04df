import type { PresetName } from './schema.js';
import type { ClientAuth } from './presets.js';
import type { Secret } from './secret.js';

export type { Endpoint } from '../net/endpoint.js';
import type { Endpoint } from '../net/endpoint.js';

/** TLS settings for one peer; file paths are absolute, the files are read by src/net/tls-material.ts. */
export interface TlsConfig {
  /** Where these settings live in proxy.yaml, for messages: "upstreams.apiax.tls". */
  readonly setting: string;
  readonly caFile: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly passphrase: Secret | undefined;
  readonly servername: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly reloadIntervalMs: number;
}

/** How connections to one peer leave this host: straight to it, or tunnelled through an egress proxy. */
export type ProxyRoute =
  | {
      readonly kind: 'direct';
      /** Why, for `check`: "no HTTPS_PROXY set", "NO_PROXY entry … matches", "proxy: direct". */ readonly reason: string;
    }
  | {
      readonly kind: 'proxy';
      /** scheme://host:port of the proxy, never with credentials. */
      readonly origin: string;
      /** The Proxy-Authorization value (Basic), when the proxy wants credentials. */
      readonly authorization: Secret | undefined;
      /** Where it was configured: "HTTPS_PROXY" or "upstreams.apiax.proxy". */
      readonly source: string;
    };

/** Everything about reaching one peer (an upstream target or a token endpoint). */
export interface EgressConfig {
  /** Where the peer's settings live, for messages: "upstreams.apiax" or "upstreams.apiax.auth". */
  readonly setting: string;
  readonly proxy: ProxyRoute;
  readonly tls: TlsConfig | undefined;
}

export interface AuthConfig {
  readonly preset: PresetName;
  readonly tokenUrl: string;
  readonly clientId: string | undefined;
  readonly clientSecret: Secret | undefined;
  /** Seed refresh token: used only when the store has no record yet. */
  readonly refreshToken: Secret | undefined;
  readonly username: string | undefined;
  readonly password: Secret | undefined;
  readonly tppToken: Secret | undefined;
  readonly clientAuth: ClientAuth;
  readonly clientIdHeader: string;
  readonly clientSecretHeader: string;
  readonly bodyEncoding: 'form' | 'json';
  readonly scope: string | undefined;
  /** `login`: where a person authorizes; undefined means derived from the preset (collaborate, v3) or none. */
  readonly authorizeUrl: string | undefined;
  /** `login`: extra authorize-URL query parameters from auth.authorizeParams. */
  readonly authorizeParams: Readonly<Record<string, string>>;
  readonly earlyRefreshFraction: number;
  readonly earlyRefreshSeconds: number;
  readonly tokenRequestTimeoutMs: number;
  readonly tokenWaitTimeoutMs: number;
  /** Length of the refresh-lock lease; renewed every third of it while held. */
  readonly lockLeaseMs: number;
  /** How long another replica's in-flight mark blocks sending its refresh token. */
  readonly inFlightMarkTtlMs: number;
  /** Refresh without the store's lock when the store is unreachable (only safe for non-rotating refresh tokens). */
  readonly refreshWithoutLock: boolean;
  /** How tokens are obtained: a refresh token, or the client credentials alone (generic oauth2). */
  readonly grant: 'refresh_token' | 'client_credentials';
  /** How the token endpoint is reached (auth.tls / auth.proxy, else the upstream's, else the environment). */
  readonly egress: EgressConfig;
  /**
   * Credentials the preset needs that the config left empty (e.g. `${X:-}` with X unset). Such an upstream
   * starts in the needs-credentials state instead of failing start-up. Each entry is a hint for the operator.
   */
  readonly missing: readonly string[];
}

export interface UpstreamConfig {
  readonly name: string;
  /** Path prefix the upstream is routed at, without trailing slash (e.g. "/collaborate"). */
  readonly routePath: string;
  /** scheme://host:port of the target. */
  readonly targetOrigin: string;
  /** Base path of the target without trailing slash ("" for the root). */
  readonly targetBasePath: string;
  readonly replayOn: ReadonlySet<number>;
  /** Lowercased header names removed from client requests, on top of Authorization and Proxy-Authorization. */
  readonly stripHeaders: readonly string[];
  readonly maxReplayBodyBytes: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxQueuedRequests: number;
  readonly queueTimeoutMs: number;
  readonly cookies: 'scope' | 'strip' | 'pass';
  /** How the target is reached. */
  readonly egress: EgressConfig;
  /** Limits of upgraded (WebSocket) connections to this upstream. */
  readonly websocket: { readonly idleTimeoutMs: number; readonly maxLifetimeMs: number };
  readonly auth: AuthConfig;
}

export interface RedisStoreConfig {
  readonly type: 'redis';
  readonly url: Secret | undefined;
  readonly sentinels: readonly Endpoint[] | undefined;
  readonly name: string | undefined;
  readonly cluster: readonly Endpoint[] | undefined;
  readonly username: string | undefined;
  readonly password: Secret | undefined;
  readonly keyPrefix: string;
  readonly encryptionKey: Buffer | undefined;
  readonly commandTimeoutMs: number;
}

export type StoreConfig = { readonly type: 'file'; readonly path: string } | { readonly type: 'memory' } | RedisStoreConfig;

export interface Config {
  /** The file the config came from (for messages), or "<inline>". */
  readonly source: string;
  /** SHA-256 of the file's text as read (what `sha256sum proxy.yaml` prints): which version is running. */
  readonly sha256: string;
  /** The `…File` secrets it read (absolute paths): a reload also follows a change of these. */
  readonly secretFiles: readonly string[];
  readonly listen: Endpoint;
  readonly admin: Endpoint | null;
  readonly log: { readonly level: string; readonly accessLog: boolean };
  readonly store: StoreConfig;
  readonly drainTimeoutMs: number;
  readonly limits: {
    readonly maxClientConnections: number;
    readonly clientBodyIdleTimeoutMs: number;
    readonly maxBufferedBodyBytes: number;
    readonly maxUpgradedConnections: number;
  };
  /** Reload on SIGHUP, and on a change of the file when `watch` (checked every intervalMs). */
  readonly reload: { readonly watch: boolean; readonly intervalMs: number };
  /** Inbound client keys (SHA-256 digests) and the header they come in; no keys means no inbound check. */
  readonly inboundAuth: { readonly header: string; readonly keys: readonly { readonly name: string; readonly sha256: string }[] };
  readonly upstreams: readonly UpstreamConfig[];
}
