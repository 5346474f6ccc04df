/**
 * WebSocket upgrades on the proxy listener, as a short sequence of steps like a request's:
 *   protocol (only `Upgrade: websocket` on GET) → client key → target → cap → token → handshake upstream
 *   (a rejected token is refreshed and the handshake replayed once, as for requests) → 101 to the client →
 *   bytes copied both ways until a side closes, the connection idles or outlives its time, or the proxy
 *   shuts down. Every other upgrade is refused 501. Each failure is answered on the socket as the same JSON
 *   error requests get, logged and counted; nothing here throws out of `handle`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Metrics } from '../../admin/metrics.js';
import { ProxyError } from '../../errors.js';
import { requestIdFrom } from '../../http/request-id.js';
import type { Logger } from '../../log.js';
import type { CurrentToken } from '../../tokens/credential.js';
import type { ForwardResult } from '../forward.js';
import { upstreamRequestHeaders } from '../header-rules.js';
import { refuseSocket } from '../raw-refusal.js';
import { sendWithReplay } from '../replay.js';
import { hostNamingListener, type createTargetResolver } from '../request-target.js';
import type { Route } from '../route.js';
import { upstreamFailure } from '../upstream-failure.js';
import { sendHandshake, type Switched } from './handshake.js';
import { sendHeldOnSocket, switchingProtocolsHead } from './socket-response.js';
import { UpgradedConnection, type ClosedSummary } from './upgraded-connection.js';
import { UpgradedConnections } from './upgraded-connections.js';

export interface UpgradeHandlerOptions {
  /** Called for every upgrade, never kept: the app swaps it when the configuration is reloaded. */
  resolveTarget: ReturnType<typeof createTargetResolver<Route>>;
  /** The inbound client check; undefined lets every client in. Read per upgrade, like resolveTarget. */
  authenticate: ((req: IncomingMessage) => boolean) | undefined;
  logger: Logger;
  metrics: Metrics;
  /** Open upgraded connections and handshakes under way, all upstreams together. */
  maxUpgradedConnections: number;
}

export interface UpgradeHandler {
  /** Handles one upgrade request from the server's 'upgrade' event. Never throws. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** SIGTERM: close frame 1001 to both sides at a frame boundary, then end the sockets; resolves when all are closed or after timeoutMs (then destroys). */
  closeAll(timeoutMs: number): Promise<void>;
  readonly openCount: number;
}

/** What a client refused at the cap is told to wait: upgraded connections last long, so not a second. */
const CAP_RETRY_AFTER_SECONDS = 5;

const SLASH = 0x2f;

type Outcome = 'upgraded' | 'replayed' | 'refused_status' | 'error' | 'limit';

interface UpgradeContext {
  readonly id: string;
  readonly startedAt: number;
  route: Route | undefined;
  logPath: string;
  generation: number | undefined;
  replayed: boolean;
  /** The client's place under the cap, while it holds one. */
  entered: boolean;
}

export function createUpgradeHandler(options: UpgradeHandlerOptions): UpgradeHandler {
  const { logger, metrics } = options;
  const connections = new UpgradedConnections(options.maxUpgradedConnections);

  function handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const context: UpgradeContext = {
      id: requestIdFrom(req.headers),
      startedAt: performance.now(),
      route: undefined,
      logPath: '',
      generation: undefined,
      replayed: false,
      entered: false,
    };
    try {
      // Node hands the socket over without an error listener: a reset during the handshake must not crash.
      socket.on('error', ignore);
      run(req, socket, head, context).catch((error: unknown) => fail(socket, context, error));
    } catch (error) {
      fail(socket, context, error);
    }
  }

  async function run(req: IncomingMessage, socket: Duplex, head: Buffer, context: UpgradeContext): Promise<void> {
    if (!isWebSocketUpgrade(req)) throw new ProxyError('NOT_SUPPORTED', 'only WebSocket upgrades are supported');
    if (req.method !== 'GET') throw new ProxyError('METHOD_NOT_ALLOWED', 'a WebSocket handshake must be a GET request');
    // Read per upgrade, like resolveTarget: the app may swap both on a reload.
    const authenticate = options.authenticate;
    if (authenticate && !authenticate(req)) throw new ProxyError('CLIENT_UNAUTHENTICATED', 'the client key is missing or not accepted');
    if (hasBody(req)) throw new ProxyError('BAD_REQUEST', 'a WebSocket handshake carries no body');
    const url = req.url ?? '';
    context.logPath = url;
    const host =
      url.charCodeAt(0) === SLASH ? undefined : hostNamingListener(req.headers.host, req.socket.localAddress, req.socket.localPort);
    const target = options.resolveTarget(url, host);
    const route = target.route;
    context.route = route;
    context.logPath = target.logPath;
    if (connections.shuttingDown) throw new ProxyError('SHUTTING_DOWN', 'the proxy is shutting down');
    if (!connections.tryEnter(socket)) {
      countUpgrade(context, 'limit');
      throw new ProxyError(
        'TOO_MANY_UPGRADES',
        `the proxy already holds ${options.maxUpgradedConnections} upgraded connections (limits.maxUpgradedConnections)`,
        { retryAfterSeconds: CAP_RETRY_AFTER_SECONDS },
      );
    }
    context.entered = true;
    socket.once('close', () => leave(socket, context));

    // While the handshake uses the route's pool, a reload that retires the route waits for it.
    route.enter();
    let result: ForwardResult;
    let switched: Switched | undefined;
    try {
      const token = route.tokens.current() ?? (await route.tokens.acquire());
      // Authorization goes last, so a replay only swaps the final value. Upgrade and Connection are
      // hop-by-hop and dropped with the rest; undici sends its own for `upgrade: 'websocket'`.
      const headers = upstreamRequestHeaders(req, route.headerRules, context.id);
      headers.push('authorization', '');
      const send = (bearer: CurrentToken, holdStatus: (status: number) => boolean): Promise<ForwardResult> => {
        context.generation = bearer.generation;
        headers[headers.length - 1] = bearer.authorization;
        const request = {
          path: target.upstreamPath,
          headers,
          headersTimeoutMs: route.upstream.headersTimeoutMs,
          bodyIdleTimeoutMs: route.upstream.bodyIdleTimeoutMs,
        };
        return sendHandshake(route, request, socket, holdStatus, (upgraded) => void (switched = upgraded));
      };
      result = await sendWithReplay({
        credential: route.tokens,
        replayOn: route.upstream.replayOn,
        token,
        // A handshake has no body: it can always be sent again.
        replayable: true,
        send,
        onReplay: () => void (context.replayed = true),
      });
    } finally {
      route.leave();
    }
    if (switched) return open(socket, head, context, route, switched);
    settle(socket, context, route, result);
  }

  /** The upstream said 101: tell the client, then copy bytes both ways. */
  function open(client: Duplex, head: Buffer, context: UpgradeContext, route: Route, switched: Switched): void {
    const upstream = switched.socket;
    const switchHead = switchingProtocolsHead(switched.headers, route.responseScope);
    if (switchHead === undefined) {
      upstream.destroy();
      throw new ProxyError(
        'UPSTREAM_BAD_RESPONSE',
        `upstream ${route.upstream.name} switched protocols with a head that cannot be forwarded`,
      );
    }
    if (client.destroyed) {
      upstream.destroy();
      return clientLeft(context);
    }
    const upstreamName = route.upstream.name;
    const connection = new UpgradedConnection({
      client,
      upstream,
      idleTimeoutMs: route.upstream.websocket.idleTimeoutMs,
      maxLifetimeMs: route.upstream.websocket.maxLifetimeMs,
      onClosed: (summary) => closed(connection, context, upstreamName, summary),
    });
    client.write(Buffer.from(switchHead, 'latin1'));
    metrics.upgradedConnections.inc({ upstream: upstreamName });
    countUpgrade(context, context.replayed ? 'replayed' : 'upgraded');
    logHandshake(context, 101, undefined);
    connection.start(head);
    // Started first: a shutdown under way closes it at once, with its frames after the 101.
    context.entered = false;
    connections.opened(client, connection);
  }

  /** Any answer but 101: it went to the client already, or is held and goes now, or there was none. */
  function settle(socket: Duplex, context: UpgradeContext, route: Route, result: ForwardResult): void {
    if (result.kind === 'sent') {
      countUpgrade(context, 'refused_status');
      logHandshake(context, result.status, undefined);
      return;
    }
    if (result.kind === 'held') {
      if (!sendHeldOnSocket(socket, result.response, route.responseScope)) {
        throw new ProxyError(
          'UPSTREAM_BAD_RESPONSE',
          `upstream ${route.upstream.name} answered the handshake with a head that cannot be forwarded`,
        );
      }
      countUpgrade(context, 'refused_status');
      logHandshake(context, result.response.status, undefined);
      return;
    }
    if (result.responseStarted) {
      countUpgrade(context, 'error');
      logHandshake(context, 0, 'UPSTREAM_BODY_ERROR');
      return;
    }
    if (socket.destroyed) return clientLeft(context);
    throw upstreamFailure(result.error, route.upstream);
  }

  /** The client went away during the handshake: nobody to answer. */
  function clientLeft(context: UpgradeContext): void {
    countUpgrade(context, 'error');
    logHandshake(context, 0, undefined, undefined, true);
  }

  /** Answers the failure on the socket, logs and counts it. Never throws. */
  function fail(socket: Duplex, context: UpgradeContext, error: unknown): void {
    try {
      const proxyError = error instanceof ProxyError ? error : new ProxyError('INTERNAL', 'internal error', { cause: error });
      if (proxyError.code !== 'TOO_MANY_UPGRADES') countUpgrade(context, 'error');
      logHandshake(context, proxyError.status, proxyError.code, proxyError);
      refuseSocket(socket, proxyError, context.id);
    } catch {
      socket.destroy();
    }
    leave(socket, context);
  }

  function leave(socket: Duplex, context: UpgradeContext): void {
    if (!context.entered) return;
    context.entered = false;
    connections.leave(socket);
  }

  function closed(connection: UpgradedConnection, context: UpgradeContext, upstream: string, summary: ClosedSummary): void {
    connections.closed(connection);
    metrics.upgradedConnections.dec({ upstream });
    metrics.upgradedCloses.inc({ upstream, reason: summary.reason });
    logger.info(
      {
        event: 'websocket_closed',
        reqId: context.id,
        upstream,
        path: context.logPath,
        reason: summary.reason,
        durationMs: summary.durationMs,
        bytesFromClient: summary.bytesFromClient,
        bytesFromUpstream: summary.bytesFromUpstream,
      },
      'websocket closed',
    );
  }

  function countUpgrade(context: UpgradeContext, outcome: Outcome): void {
    metrics.upgrades.inc({ upstream: context.route?.upstream.name ?? '', outcome });
  }

  /** One line per handshake: the path without its query, the status and the proxy's own error code. */
  function logHandshake(context: UpgradeContext, status: number, code: string | undefined, error?: ProxyError, aborted?: boolean): void {
    const fields = {
      event: 'websocket_upgrade',
      reqId: context.id,
      upstream: context.route?.upstream.name,
      path: context.route ? context.logPath : withoutQuery(context.logPath),
      status,
      durationMs: Math.round((performance.now() - context.startedAt) * 100) / 100,
      replayed: context.replayed,
      generation: context.generation,
      error: code,
      cause: error?.cause instanceof Error ? error.cause.message : undefined,
      ...(aborted ? { aborted } : {}),
    };
    if (error && error.status >= 500) logger[error.status === 503 ? 'warn' : 'error'](fields, error.message);
    else logger.info(fields, 'websocket upgrade');
  }

  return {
    handle,
    closeAll: (timeoutMs) => connections.closeAll(timeoutMs),
    get openCount() {
      return connections.openCount;
    },
  };
}

/** RFC 6455 §4.1: `Upgrade: websocket`, case-insensitively. */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket';
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function withoutQuery(url: string): string {
  const queryStart = url.indexOf('?');
  return (queryStart === -1 ? url : url.slice(0, queryStart)).slice(0, 200);
}

function ignore(): void {}
