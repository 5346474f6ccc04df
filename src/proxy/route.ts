/**
 * Everything the request path needs for one upstream, built once at start-up: its settings, its
 * connection pool and the bound on requests waiting for it, its token manager, and pre-bound metric
 * children (so no label lookup per request).
 */
import { Pool, type Dispatcher } from 'undici';
import type { Counter, Histogram } from 'prom-client';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../admin/metrics.js';
import type { Credential } from '../tokens/credential.js';
import type { RequestHeaderRules } from './header-rules.js';
import type { ResponseScope } from './response-scope.js';
import { UpstreamQueue } from './upstream-queue.js';
import { createEgressDispatcher, type EgressDispatcher } from '../net/egress-dispatcher.js';
import type { Logger } from '../log.js';

export interface Route {
  readonly routePath: string;
  readonly targetBasePath: string;
  readonly upstream: UpstreamConfig;
  readonly tokens: Credential;
  /** The keep-alive pool for the next request (a new one takes over when the upstream's TLS files rotate). */
  readonly pool: Dispatcher;
  readonly queue: UpstreamQueue;
  readonly responseScope: ResponseScope;
  readonly headerRules: RequestHeaderRules;
  readonly metrics: Metrics;
  readonly upstreamDuration: ReturnType<Histogram<'upstream'>['labels']>;
  countRequest(status: number): void;
  /** A request started (enter) or finished (leave) on this route: a route retired by a reload waits for them. */
  enter(): void;
  leave(): void;
  /** Resolves once no request is in flight on this route. */
  whenIdle(): Promise<void>;
  /** Lets the pool finish its requests, then closes its connections. */
  close(): Promise<void>;
}

export interface RouteOptions {
  /** The header clients send their inbound key in (lowercase): it never reaches an upstream. */
  readonly inboundKeyHeader: string;
  /** The upstream's connections, from createUpstreamPools. */
  readonly pools: EgressDispatcher;
}

export function createRoute(upstream: UpstreamConfig, tokens: Credential, metrics: Metrics, options: RouteOptions): Route {
  const { pools } = options;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const byStatus = new Map<number, ReturnType<Counter<'upstream' | 'status'>['labels']>>();
  return {
    routePath: upstream.routePath,
    targetBasePath: upstream.targetBasePath,
    upstream,
    tokens,
    get pool() {
      return pools.current;
    },
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
    enter() {
      inFlight++;
    },
    leave() {
      inFlight--;
      if (inFlight > 0 || idleWaiters.length === 0) return;
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
    whenIdle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    close: () => pools.close(),
  };
}

/** The keep-alive pools to the upstream. Throws ConfigError when its TLS files cannot be read or do not load. */
export function createUpstreamPools(upstream: UpstreamConfig, logger: Logger): EgressDispatcher {
  return createEgressDispatcher({
    egress: upstream.egress,
    peer: `upstream ${upstream.name}`,
    connectTimeoutMs: upstream.connectTimeoutMs,
    logger,
    create: (connect) =>
      new Pool(upstream.targetOrigin, {
        connections: upstream.maxConnections,
        connect,
        headersTimeout: upstream.headersTimeoutMs,
        bodyTimeout: upstream.bodyIdleTimeoutMs,
        keepAliveTimeout: 4_000,
      }),
  });
}
