/**
 * createApp(config) wires the parts together: store → token managers → routes → proxy and admin
 * listeners. Importing this file does nothing; `start()` opens the store and the sockets, `stop()`
 * drains in-flight requests and closes everything.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
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
import { createRoute, createUpstreamPools, type Route } from './proxy/route.js';
import { countStoreOperations } from './store/counted-store.js';
import { createStore } from './store/create-store.js';
import { describeStore } from './store/describe-store.js';
import { storeOpenedLater } from './store/store-opened-later.js';
import { ProxyError, StoreError } from './errors.js';
import { isLoopback } from './net/is-loopback.js';
import { httpUrl } from './net/endpoint.js';
import { listen } from './net/listen.js';
import type { TokenStore } from './store/token-store.js';
import { createOAuth2Client, type TokenClient } from './tokens/providers/oauth2-client.js';
import { TokenManager } from './tokens/token-manager.js';
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
  /** Stops accepting, lets in-flight requests finish (up to config.drainTimeoutMs), then closes everything. */
  stop(): Promise<void>;
  statuses(): TokenStatus[];
  readonly metrics: Metrics;
}

export function createApp(config: Config, options: AppOptions): App {
  const logger = options.logger;
  const owner = options.owner ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  const metrics = createMetrics();
  const startedAt = Date.now();
  let store: TokenStore | undefined;
  let managers: TokenManager[] = [];
  let clients: TokenClient[] = [];
  let routes: Route[] = [];
  let proxyServer: Server | undefined;
  let adminServer: Server | undefined;
  let draining = false;
  const sockets = new Set<Socket>();

  const statuses = (): TokenStatus[] => managers.map((manager) => manager.status());

  async function start(): Promise<{ proxyUrl: string; adminUrl: string | undefined }> {
    // Connections first: TLS files that do not load stop the start before the store is opened.
    const pools = config.upstreams.map((upstream) => {
      clients.push(createOAuth2Client(upstream.auth, { upstream: upstream.name, logger }));
      return createUpstreamPools(upstream, logger);
    });
    store = countStoreOperations(options.store ?? (await openStore(config, logger, owner)), metrics.storeOperations);
    for (const [index, upstream] of config.upstreams.entries()) {
      const manager = new TokenManager({ upstream, store, client: clients[index]!, logger, metrics: metrics.tokens, owner });
      managers.push(manager);
      routes.push(createRoute(upstream, manager, metrics, { inboundKeyHeader: config.inboundAuth.header, pools: pools[index]! }));
    }
    metrics.setExpirySource(() => statuses().map((status) => ({ upstream: status.upstream, expiresInSeconds: status.expiresInSeconds })));
    await Promise.all(managers.map((manager) => manager.start()));

    const countUnrouted = (status: number): void => metrics.requests.inc({ upstream: '', status: String(status) });
    const handler = createRequestHandler({
      resolveTarget: createTargetResolver(routes),
      logger,
      accessLog: config.log.accessLog,
      countUnrouted,
      authenticate: createInboundAuth(config.inboundAuth),
      bodyBudget: new BodyBudget(config.limits.maxBufferedBodyBytes),
      clientBodyIdleTimeoutMs: config.limits.clientBodyIdleTimeoutMs,
    });
    // requestTimeout 0: a 1 GiB upload or download may take longer than Node's 5-minute default; slow
    // clients are still bounded by headersTimeout, and upstream silence by the route's timeouts.
    proxyServer = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      handler(req, res);
    });
    const maxClientConnections = config.limits.maxClientConnections;
    proxyServer.on('connection', (socket: Socket) => {
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
    // Not an open proxy: CONNECT tunnels are refused. WebSocket upgrades are not supported yet.
    proxyServer.on('connect', (_req, socket: Duplex) => {
      refuseSocket(socket, new ProxyError('BAD_REQUEST_TARGET', 'CONNECT is not allowed: this is not an open proxy'), randomUUID());
    });
    proxyServer.on('upgrade', (_req, socket: Duplex) => {
      refuseSocket(socket, new ProxyError('NOT_SUPPORTED', 'protocol upgrades (WebSocket) are not supported yet'), randomUUID());
    });
    const proxyAddress = await listen(proxyServer, config.listen);

    let adminUrl: string | undefined;
    if (config.admin) {
      adminServer = createAdminServer({
        registry: metrics.registry,
        statuses,
        isDraining: () => draining,
        version: options.version ?? 'dev',
        startedAt,
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
        routes: routes.map((route) => `${route.routePath} -> ${route.upstream.targetOrigin}${route.upstream.targetBasePath}`),
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
    for (const manager of managers) manager.stop();
    if (proxyServer) {
      const closed = new Promise<void>((resolve) => proxyServer?.close(() => resolve()));
      proxyServer.closeIdleConnections();
      // A keep-alive connection whose in-flight response finishes becomes idle but stays open until the
      // client drops it: close such connections as they go idle rather than wait out the drain time.
      const sweeper = setInterval(() => proxyServer?.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        logger.warn({ event: 'drain_timeout', openConnections: sockets.size }, 'drain time is up; closing the remaining connections');
        proxyServer?.closeAllConnections();
      }, config.drainTimeoutMs);
      await closed;
      clearTimeout(timer);
      clearInterval(sweeper);
    }
    await new Promise<void>((resolve) => (adminServer ? adminServer.close(() => resolve()) : resolve()));
    adminServer?.closeAllConnections();
    await Promise.all([...routes.map((route) => route.close()), ...clients.map((client) => client.close())]);
    // Notes on the stored records (a token found good after all) land before the store closes.
    await Promise.all(managers.map((manager) => manager.settled()));
    await store?.close();
    managers = [];
    clients = [];
    routes = [];
  }

  return { start, stop, statuses, metrics };
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
