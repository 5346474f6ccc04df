/**
 * Prometheus metrics on a registry of this app's own (no global state, so tests can run many apps).
 * Label values are upstream names, status codes and fixed outcome words: bounded, and never secret.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenMetrics } from '../tokens/token-metrics.js';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'upstream' | 'status'>;
  readonly upstreamDuration: Histogram<'upstream'>;
  readonly replays: Counter<'upstream' | 'outcome'>;
  readonly refreshes: Counter<'upstream' | 'outcome' | 'reason'>;
  readonly refreshDuration: Histogram<'upstream'>;
  readonly tokenExpiresIn: Gauge<'upstream'>;
  readonly credentialDead: Gauge<'upstream'>;
  readonly storeOperations: Counter<'operation'>;
  readonly storeWriteFailures: Counter<'upstream'>;
  /** WebSocket handshakes by outcome: upgraded, replayed (upgraded after a replay), refused_status, error, limit. */
  readonly upgrades: Counter<'upstream' | 'outcome'>;
  /** Upgraded connections open now. */
  readonly upgradedConnections: Gauge<'upstream'>;
  /** Upgraded connections closed, by reason: idle, lifetime, shutdown, client, upstream. */
  readonly upgradedCloses: Counter<'upstream' | 'reason'>;
  /** The token core's reports, counted on the metrics above. */
  readonly tokens: TokenMetrics;
  /** Where the time-to-expiry gauge reads from when scraped (set once the token managers exist). */
  setExpirySource(source: () => Iterable<{ upstream: string; expiresInSeconds: number | undefined }>): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const prefix = 'oauth_sidecar_';
  collectDefaultMetrics({ register: registry, prefix });
  const registers = [registry];
  let expirySource: () => Iterable<{ upstream: string; expiresInSeconds: number | undefined }> = () => [];
  const metrics: Omit<Metrics, 'tokens'> = {
    setExpirySource(source) {
      expirySource = source;
    },
    registry,
    requests: new Counter({
      name: `${prefix}requests_total`,
      help: 'Proxied requests by upstream and response status',
      labelNames: ['upstream', 'status'],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: `${prefix}upstream_duration_seconds`,
      help: 'Time from sending the request upstream to the end of the response',
      labelNames: ['upstream'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    replays: new Counter({
      name: `${prefix}replays_total`,
      help: 'Requests replayed after the upstream rejected the token, by outcome of the replay',
      labelNames: ['upstream', 'outcome'],
      registers,
    }),
    refreshes: new Counter({
      name: `${prefix}token_refreshes_total`,
      help: 'Token refresh attempts by outcome and reason',
      labelNames: ['upstream', 'outcome', 'reason'],
      registers,
    }),
    refreshDuration: new Histogram({
      name: `${prefix}token_refresh_duration_seconds`,
      help: 'Token endpoint latency',
      labelNames: ['upstream'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    tokenExpiresIn: new Gauge({
      name: `${prefix}token_expires_in_seconds`,
      help: 'Seconds until the current access token expires; absent while there is none',
      labelNames: ['upstream'],
      registers,
      // Computed when scraped, so it costs nothing between scrapes.
      collect() {
        this.reset();
        for (const { upstream, expiresInSeconds } of expirySource()) {
          if (expiresInSeconds !== undefined) this.set({ upstream }, expiresInSeconds);
        }
      },
    }),
    credentialDead: new Gauge({
      name: `${prefix}credential_dead`,
      help: '1 when the credential was rejected for good and needs a new refresh token',
      labelNames: ['upstream'],
      registers,
    }),
    storeOperations: new Counter({
      name: `${prefix}store_operations_total`,
      help: 'Token store operations (never on the request path)',
      labelNames: ['operation'],
      registers,
    }),
    storeWriteFailures: new Counter({
      name: `${prefix}store_write_failures_total`,
      help: 'Failed writes of a new token record (retried until they land)',
      labelNames: ['upstream'],
      registers,
    }),
    upgrades: new Counter({
      name: `${prefix}websocket_upgrades_total`,
      help: 'WebSocket handshakes by upstream and outcome (upgraded, replayed, refused_status, error, limit)',
      labelNames: ['upstream', 'outcome'],
      registers,
    }),
    upgradedConnections: new Gauge({
      name: `${prefix}websocket_connections`,
      help: 'Upgraded (WebSocket) connections open now',
      labelNames: ['upstream'],
      registers,
    }),
    upgradedCloses: new Counter({
      name: `${prefix}websocket_closes_total`,
      help: 'Upgraded (WebSocket) connections closed, by reason (idle, lifetime, shutdown, client, upstream)',
      labelNames: ['upstream', 'reason'],
      registers,
    }),
  };
  const tokens: TokenMetrics = {
    refreshEnded(upstream, outcome, reason, latencySeconds) {
      metrics.refreshes.inc({ upstream, outcome, reason });
      if (latencySeconds !== undefined) metrics.refreshDuration.observe({ upstream }, latencySeconds);
    },
    replayEnded: (upstream, outcome) => metrics.replays.inc({ upstream, outcome }),
    credentialDead: (upstream, dead) => metrics.credentialDead.set({ upstream }, dead ? 1 : 0),
    storeWriteFailed: (upstream) => metrics.storeWriteFailures.inc({ upstream }),
  };
  return { ...metrics, tokens };
}
