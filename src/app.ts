/**
 * createApp(config) wires the parts together: store → token managers → routes → proxy and admin
 * listeners. Importing this file does nothing; `start()` opens the store and the sockets, `stop()`
 * drains in-flight requests and closes everything.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAdminServer } from './admin/admin-server.js';
import { createMetrics, type Metrics } from './admin/metrics.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { BodyBudget } from './proxy/body-budget.js';
import { createClientErrorHandler } from './proxy/client-error.js';
import { createRequestHandler } from './proxy/handle-request.js';
import { createInboundAuth } from './proxy/inbound-auth.js';
import { refuseSocket } from './proxy/raw-refusal.js';
import { createTargetResolver } from './proxy/request-target.js';
import type { Route } from './proxy/route.js';
import { UpstreamSet, type UpstreamChanges } from './upstream-set.js';
import { createUpgradeHandler, type UpgradeHandler, type UpgradeHandlerOptions } from './proxy/upgrade/handle-upgrade.js';
import { settingsKey } from './config/settings-key.js';
import { countStoreOperations } from './store/counted-store.js';
import { createStore } from './store/create-store.js';
import { describeStore } from './store/describe-store.js';
import { storeOpenedLater } from './store/store-opened-later.js';
import { ConfigError, ProxyError, StoreError } from './errors.js';
import { isLoopback } from './net/is-loopback.js';
import { httpUrl } from './net/endpoint.js';
import { listen } from './net/listen.js';
import type { TokenStore } from './store/token-store.js';
import type { TokenStatus } from './tokens/token-status.js';

export interface AppOptions {
  logger: Logger;
  version?: string;
  /** This replica's id (lock owner, record writer); random per process by default. */
  owner?: string;
  /** Injected store (tests); otherwise built from config.store. */
  store?: TokenStore;
}

export interface App {
  start(): Promise<{ proxyUrl: string; adminUrl: string | undefined }>;
  /**
   * Applies a new config while serving: upstreams added, removed or changed without dropping requests in
   * flight; an upstream whose auth is unchanged keeps its token. Throws ConfigError (nothing changed) when a
   * part cannot be built. listen, admin and store take a restart: they are reported, not applied.
   */
  reload(next: Config): Promise<ReloadOutcome>;
  /** Counts a config that was refused before reaching reload (it did not load), for /status. */
  noteRefusedConfig(sha256: string, problems: readonly string[]): void;
  /** Stops accepting, lets in-flight requests finish (up to config.drainTimeoutMs), then closes everything. */
  stop(): Promise<void>;
  statuses(): TokenStatus[];
  readonly metrics: Metrics;
}

export interface ReloadOutcome extends UpstreamChanges {
  readonly restartNeededFor: readonly string[];
}

export function createApp(config: Config, options: AppOptions): App {
  const logger = options.logger;
  const owner = options.owner ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  const metrics = createMetrics();
  const startedAt = Date.now();
  let store: TokenStore | undefined;
  let upstreams: UpstreamSet | undefined;
  /** The config being served (listen, admin and store stay those of the start). */
  let current = config;
  let loadedAt = startedAt;
  let restartNeededFor: readonly string[] = [];
  const reloads: { applied: number; refused: number; lastRefusal?: { at: string; sha256: string; problems: number } } = {
    applied: 0,
    refused: 0,
  };
  let handleRequest: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  /** What WebSocket upgrades resolve and check against; swapped with the request handler on a reload. */
  const upgradeRouting: Pick<UpgradeHandlerOptions, 'resolveTarget' | 'authenticate'> = {
    resolveTarget: createTargetResolver<Route>([]),
    authenticate: undefined,
  };
  let upgrades: UpgradeHandler | undefined;
  let proxyServer: Server | undefined;
  let adminServer: Server | undefined;
  let draining = false;
  const sockets = new Set<Socket>();

  const statuses = (): TokenStatus[] => (upstreams?.managers ?? []).map((manager) => manager.status());
  const countUnrouted = (status: number): void => metrics.requests.inc({ upstream: '', status: String(status) });

  /** Makes one config and its routes current: a new request handler (requests in flight keep theirs) and upgrade routing. */
  const switchTo = (settings: Config, routes: Route[]): void => {
    const resolveTarget = createTargetResolver(routes);
    const authenticate = createInboundAuth(settings.inboundAuth);
    upgradeRouting.resolveTarget = resolveTarget;
    upgradeRouting.authenticate = authenticate;
    handleRequest = createRequestHandler({
      resolveTarget,
      logger,
      accessLog: settings.log.accessLog,
      countUnrouted,
      authenticate,
      bodyBudget,
      clientBodyIdleTimeoutMs: settings.limits.clientBodyIdleTimeoutMs,
    });
  };
  // One budget for the process: a reload must not hand out a second one beside the bytes already held.
  const bodyBudget = new BodyBudget(config.limits.maxBufferedBodyBytes);

  async function start(): Promise<{ proxyUrl: string; adminUrl: string | undefined }> {
    store = countStoreOperations(options.store ?? (await openStore(config, logger, owner)), metrics.storeOperations);
    const live = new UpstreamSet({ store, logger, metrics, owner });
    upstreams = live;
    await live.prepare(config.upstreams, config.inboundAuth.header).apply(() => switchTo(config, live.routes));
    metrics.setExpirySource(() => statuses().map((status) => ({ upstream: status.upstream, expiresInSeconds: status.expiresInSeconds })));

    // requestTimeout 0: a 1 GiB upload or download may take longer than Node's 5-minute default; slow
    // clients are still bounded by headersTimeout, and upstream silence by the route's timeouts.
    proxyServer = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      handleRequest(req, res);
    });
    proxyServer.on('connection', (socket: Socket) => {
      const maxClientConnections = current.limits.maxClientConnections;
      // Like server.maxConnections, but the client is told why (Node's own cap drops the socket silently).
      if (sockets.size >= maxClientConnections) {
        const requestId = randomUUID();
        logger.warn(
          { event: 'connection_refused', reqId: requestId, openConnections: sockets.size },
          'too many client connections; refused one',
        );
        refuseSocket(
          socket,
          new ProxyError('TOO_MANY_CONNECTIONS', `the proxy already serves ${maxClientConnections} connections`, { retryAfterSeconds: 1 }),
          requestId,
        );
        return;
      }
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    proxyServer.on('clientError', createClientErrorHandler({ logger, countRefusal: countUnrouted }));
    // Not an open proxy: CONNECT tunnels are refused.
    proxyServer.on('connect', (_req, socket: Duplex) => {
      refuseSocket(socket, new ProxyError('BAD_REQUEST_TARGET', 'CONNECT is not allowed: this is not an open proxy'), randomUUID());
    });
    // WebSocket upgrades go to the route's upstream with the bearer attached; other protocols get a 501.
    const upgradeHandler = createUpgradeHandler({
      get resolveTarget() {
        return upgradeRouting.resolveTarget;
      },
      get authenticate() {
        return upgradeRouting.authenticate;
      },
      logger,
      metrics,
      maxUpgradedConnections: config.limits.maxUpgradedConnections,
    });
    upgrades = upgradeHandler;
    proxyServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgradeHandler.handle(req, socket, head));
    const proxyAddress = await listen(proxyServer, config.listen);

    let adminUrl: string | undefined;
    if (config.admin) {
      adminServer = createAdminServer({
        registry: metrics.registry,
        statuses,
        isDraining: () => draining,
        version: options.version ?? 'dev',
        startedAt,
        config: () => ({
          source: current.source,
          sha256: current.sha256,
          loadedAt: new Date(loadedAt).toISOString(),
          reloads: { ...reloads },
          restartNeededFor,
        }),
      });
      adminUrl = httpUrl(await listen(adminServer, config.admin));
    }
    const proxyUrl = httpUrl(proxyAddress);
    logger.info(
      {
        event: 'started',
        proxy: proxyUrl,
        admin: adminUrl ?? 'off',
        store: store.description,
        config: config.sha256,
        routes: live.routes.map((route) => `${route.routePath} -> ${route.upstream.targetOrigin}${route.upstream.targetBasePath}`),
      },
      `oauth-sidecar listening on ${proxyUrl}`,
    );
    if (!isLoopback(config.listen.host)) {
      logger.warn(
        { event: 'non_loopback_listen', listen: config.listen.host },
        'the proxy listens beyond loopback: anyone who can reach it can use its credentials',
      );
    }
    return { proxyUrl, adminUrl };
  }

  async function stop(): Promise<void> {
    draining = true;
    upstreams?.stopTokenWork();
    if (proxyServer) {
      // Upgraded connections count as open server connections: close them (1001, going away) alongside the drain.
      const upgradesClosed = upgrades?.closeAll(current.drainTimeoutMs) ?? Promise.resolve();
      const closed = new Promise<void>((resolve) => proxyServer?.close(() => resolve()));
      proxyServer.closeIdleConnections();
      // A keep-alive connection whose in-flight response finishes becomes idle but stays open until the
      // client drops it: close such connections as they go idle rather than wait out the drain time.
      const sweeper = setInterval(() => proxyServer?.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        logger.warn({ event: 'drain_timeout', openConnections: sockets.size }, 'drain time is up; closing the remaining connections');
        proxyServer?.closeAllConnections();
      }, current.drainTimeoutMs);
      await Promise.all([closed, upgradesClosed]);
      clearTimeout(timer);
      clearInterval(sweeper);
    }
    await new Promise<void>((resolve) => (adminServer ? adminServer.close(() => resolve()) : resolve()));
    adminServer?.closeAllConnections();
    await upstreams?.close();
    await store?.close();
    upstreams = undefined;
  }

  async function reload(next: Config): Promise<ReloadOutcome> {
    const live = upstreams;
    if (!live || draining) throw new Error('reload needs a running app');
    let prepared;
    try {
      prepared = live.prepare(next.upstreams, next.inboundAuth.header);
    } catch (error) {
      if (error instanceof ConfigError) noteRefusedConfig(next.sha256, error.problems);
      throw error;
    }
    const applied: Config = { ...next, listen: current.listen, admin: current.admin, store: current.store };
    // The new routes and the handler that resolves them become current in the same step.
    await prepared.apply(() => switchTo(applied, live.routes));
    restartNeededFor = settingsNeedingRestart(config, next);
    current = applied;
    loadedAt = Date.now();
    reloads.applied++;
    logger.level = next.log.level;
    return { ...prepared.changes, restartNeededFor };
  }

  function noteRefusedConfig(sha256: string, problems: readonly string[]): void {
    reloads.refused++;
    reloads.lastRefusal = { at: new Date().toISOString(), sha256, problems: problems.length };
  }

  return { start, stop, reload, noteRefusedConfig, statuses, metrics };
}

/** The settings a running proxy keeps until restarted: its listeners and its store. */
function settingsNeedingRestart(running: Config, next: Config): string[] {
  const differs = (a: unknown, b: unknown) => settingsKey(a) !== settingsKey(b);
  return (['listen', 'admin', 'store'] as const).filter((key) => differs(running[key], next[key]));
}

/**
 * The configured store; one that is merely unreachable yet (not misconfigured) is opened in the background
 * while the proxy starts unready, so a pod that starts before its Redis does not crash-loop, and a proxy
 * whose token file another proxy still holds (a rolling update) takes over once that one stops.
 */
async function openStore(config: Config, logger: Logger, owner: string): Promise<TokenStore> {
  const open = () => createStore(config.store, logger, { leaseOwner: owner });
  try {
    return await open();
  } catch (error) {
    if (!(error instanceof StoreError && error.retryable)) throw error;
    return storeOpenedLater({ open, description: describeStore(config.store), firstError: error, logger });
  }
}
