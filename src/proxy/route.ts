/**
 * Everything the request path needs for one upstream, built once at start-up: its settings, its
 * connection pool and the bound on requests waiting for it, its token manager, and pre-bound metric
 * children (so no label lookup per request).
 */
import { Pool } from 'undici';
import type { Counter, Histogram } from 'prom-client';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../admin/metrics.js';
import type { Credential } from '../tokens/credential.js';
import type { RequestHeaderRules } from './header-rules.js';
import type { ResponseScope } from './response-scope.js';
import { UpstreamQueue } from './upstream-queue.js';

export interface Route {
  readonly routePath: string;
  readonly targetBasePath: string;
  readonly upstream: UpstreamConfig;
  readonly tokens: Credential;
  readonly pool: Pool;
  readonly queue: UpstreamQueue;
  readonly responseScope: ResponseScope;
  readonly headerRules: RequestHeaderRules;
  readonly metrics: Metrics;
  readonly upstreamDuration: ReturnType<Histogram<'upstream'>['labels']>;
  countRequest(status: number): void;
}

export interface RouteOptions {
  /** The header clients send their inbound key in (lowercase): it never reaches an upstream. */
  readonly inboundKeyHeader: string;
}

export function createRoute(upstream: UpstreamConfig, tokens: Credential, metrics: Metrics, options: RouteOptions): Route {
  const pool = new Pool(upstream.targetOrigin, {
    connections: upstream.maxConnections,
    connect: { timeout: upstream.connectTimeoutMs },
    headersTimeout: upstream.headersTimeoutMs,
    bodyTimeout: upstream.bodyIdleTimeoutMs,
    keepAliveTimeout: 4_000,
  });
  const byStatus = new Map<number, ReturnType<Counter<'upstream' | 'status'>['labels']>>();
  return {
    routePath: upstream.routePath,
    targetBasePath: upstream.targetBasePath,
    upstream,
    tokens,
    pool,
    queue: new UpstreamQueue(upstream.name, upstream),
    responseScope: {
      routePath: upstream.routePath,
      targetOrigin: upstream.targetOrigin,
      targetBasePath: upstream.targetBasePath,
      cookies: upstream.cookies,
    },
    headerRules: { strip: new Set([...upstream.stripHeaders, options.inboundKeyHeader]) },
    metrics,
    upstreamDuration: metrics.upstreamDuration.labels(upstream.name),
    countRequest(status) {
      let counter = byStatus.get(status);
      if (!counter) {
        counter = metrics.requests.labels(upstream.name, String(status));
        byStatus.set(status, counter);
      }
      counter.inc();
    },
  };
}
