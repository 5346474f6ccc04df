/**
 * The request path, as a short sequence of named steps:
 *   check the client key → resolve target → take token (in memory) → read body if replayable → forward →
 *   maybe replay once → log.
 * Per-request state lives in one RequestContext. Nothing here reads the store, a file or the config.
 * Every failure ends in failRequest, which answers, logs and counts it and never throws.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { createAccessLog, type AccessLog } from './access-log.js';
import type { CurrentToken } from '../tokens/credential.js';
import type { BodyBudget } from './body-budget.js';
import { BodyIdleWatch } from './body-idle.js';
import { sendProxyError } from '../http/error-response.js';
import { forward, sendHeld, type ForwardResult, type HeldResponse } from './forward.js';
import { upstreamRequestHeaders } from './header-rules.js';
import { sendWithReplay } from './replay.js';
import { requestIdFrom } from '../http/request-id.js';
import { STREAMED, hasBody, readBody, replayableLength } from './request-body.js';
import type { Route } from './route.js';
import { upstreamFailure } from './upstream-failure.js';
import { hostNamingListener, type createTargetResolver } from './request-target.js';

interface RequestContext {
  readonly id: string;
  readonly startedAt: number;
  route: Route | undefined;
  logPath: string;
  status: number;
  replayed: boolean;
  generation: number | undefined;
  errorCode: string | undefined;
  /** Bytes of the replay budget this request holds, released when its response closes. */
  bufferedBytes: number;
}

const SLASH = 0x2f;

/** What a client refused for lack of buffer space is told to wait. */
const BUFFER_FULL_RETRY_AFTER_SECONDS = 1;

export interface RequestHandlerOptions {
  resolveTarget: ReturnType<typeof createTargetResolver<Route>>;
  logger: Logger;
  accessLog: boolean;
  /** Counts requests that matched no route (404, 400), under upstream="". */
  countUnrouted(status: number): void;
  /** The inbound client check; undefined lets every client in. */
  authenticate: ((req: IncomingMessage) => boolean) | undefined;
  /** Shared by all requests: bodies buffered for a replay. */
  bodyBudget: BodyBudget;
  /** Longest silence inside a request body. */
  clientBodyIdleTimeoutMs: number;
}

export function createRequestHandler(options: RequestHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { resolveTarget, logger, accessLog, countUnrouted, authenticate, bodyBudget, clientBodyIdleTimeoutMs } = options;
  const accessLogger = accessLog ? createAccessLog(logger) : undefined;

  return (req, res) => {
    const context: RequestContext = {
      id: requestIdFrom(req.headers),
      startedAt: performance.now(),
      route: undefined,
      logPath: '',
      status: 0,
      replayed: false,
      generation: undefined,
      errorCode: undefined,
      bufferedBytes: 0,
    };
    res.once('close', () => {
      if (context.bufferedBytes > 0) bodyBudget.release(context.bufferedBytes);
      if (context.route) {
        context.route.countRequest(context.status || res.statusCode);
        context.route.leave();
      } else countUnrouted(context.status || res.statusCode);
      if (accessLogger) logAccess(context, res, accessLogger);
    });
    if (hasBody(req)) {
      new BodyIdleWatch(req, res, clientBodyIdleTimeoutMs, () => {
        const stalled = new ProxyError('REQUEST_TIMEOUT', `the request body stalled for more than ${clientBodyIdleTimeoutMs} ms`);
        failRequest(res, context, stalled, logger);
      });
    }
    handle(req, res, context).catch((error: unknown) => failRequest(res, context, error, logger));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    if (authenticate && !authenticate(req)) throw new ProxyError('CLIENT_UNAUTHENTICATED', 'the client key is missing or not accepted');
    // TRACE would echo the attached bearer token back to the client (RFC 9110 §9.3.8 warns of exactly this).
    if (req.method === 'TRACE' || req.method === 'CONNECT') throw new ProxyError('METHOD_NOT_ALLOWED', `${req.method} is not allowed`);
    const url = req.url ?? '';
    context.logPath = url;
    // Only absolute-form needs to know which listener the request came in on.
    const host =
      url.charCodeAt(0) === SLASH ? undefined : hostNamingListener(req.headers.host, req.socket.localAddress, req.socket.localPort);
    const target = resolveTarget(url, host);
    const route = target.route;
    context.route = route;
    route.enter();
    context.logPath = target.logPath;

    const token = route.tokens.current() ?? (await route.tokens.acquire());
    const bodyLength = replayableLength(req, route.upstream.maxReplayBodyBytes);
    const replayable = bodyLength !== STREAMED;
    let body: Buffer | Readable | null = null;
    if (bodyLength === STREAMED) body = req;
    else if (bodyLength > 0) {
      // Reserve before reading a byte: the budget bounds what all requests together hold in memory.
      if (!bodyBudget.tryReserve(bodyLength)) {
        throw new ProxyError('REPLAY_BUFFER_FULL', 'too many request bodies are buffered for a possible replay; try again shortly', {
          retryAfterSeconds: BUFFER_FULL_RETRY_AFTER_SECONDS,
        });
      }
      context.bufferedBytes = bodyLength;
      body = await readBody(req, bodyLength);
    }
    // The Authorization pair goes last, so a replay only swaps the final value.
    const headers = upstreamRequestHeaders(req, route.headerRules, context.id);
    headers.push('authorization', '');
    const send = async (bearer: CurrentToken, holdStatus: (status: number) => boolean): Promise<ForwardResult> => {
      context.generation = bearer.generation;
      headers[headers.length - 1] = bearer.authorization;
      const request = {
        method: req.method ?? 'GET',
        path: target.upstreamPath,
        headers,
        body,
        headersTimeoutMs: route.upstream.headersTimeoutMs,
        bodyIdleTimeoutMs: route.upstream.bodyIdleTimeoutMs,
      };
      const started = performance.now();
      const result = await forward(route, request, res, holdStatus);
      route.upstreamDuration.observe((performance.now() - started) / 1000);
      return result;
    };

    const result = await sendWithReplay({
      credential: route.tokens,
      replayOn: route.upstream.replayOn,
      token,
      replayable,
      send,
      onReplay: () => void (context.replayed = true),
    });
    settle(res, context, result);
  }
}

function settle(res: ServerResponse, context: RequestContext, result: ForwardResult): void {
  if (result.kind === 'sent') {
    context.status = result.status;
    return;
  }
  if (result.kind === 'held') return answerHeld(res, context, result.response);
  if (context.errorCode !== undefined) return; // the proxy answered already (a stalled body's 408)
  if (result.responseStarted) {
    context.errorCode = 'UPSTREAM_BODY_ERROR';
    return;
  }
  if (res.destroyed) return; // the client went away first; nobody to answer
  throw upstreamFailure(result.error, context.route?.upstream);
}

function answerHeld(res: ServerResponse, context: RequestContext, held: HeldResponse): void {
  const outcome = sendHeld(res, held);
  if (outcome === 'written') context.status = held.status;
  else if (outcome === 'refused') {
    throw new ProxyError(
      'UPSTREAM_BAD_RESPONSE',
      `upstream ${context.route?.upstream.name ?? ''} sent a response head that cannot be forwarded`,
    );
  }
}

/** Answers (or breaks) the response, logs and records the failure. Never throws: nothing is left to catch it. */
function failRequest(res: ServerResponse, context: RequestContext, error: unknown, logger: Logger): void {
  try {
    const proxyError = error instanceof ProxyError ? error : new ProxyError('INTERNAL', 'internal error', { cause: error });
    if (res.writableEnded) {
      // Answered already (the stalled body's 408, or a complete upstream response): only a bug is worth a line.
      if (!(error instanceof ProxyError)) logFailure(logger, context, proxyError);
      return;
    }
    context.errorCode = proxyError.code;
    // Once the head is out the client saw the upstream's status; the response can only be broken off.
    if (!res.headersSent) context.status = proxyError.status;
    if (proxyError.status >= 500) logFailure(logger, context, proxyError);
    // RFC 9112 §9.6: a server that answers before reading the whole body closes the connection after it,
    // rather than leave the rest of the body where the next request should start.
    if (!res.req.complete) res.shouldKeepAlive = false;
    sendProxyError(res, proxyError, context.id);
  } catch (secondary) {
    try {
      logger.error(
        { reqId: context.id, err: secondary instanceof Error ? secondary.message : String(secondary) },
        'failed to answer a failed request',
      );
    } catch {
      // the logger itself failed; the socket still has to go
    }
    res.destroy();
  }
}

function logFailure(logger: Logger, context: RequestContext, proxyError: ProxyError): void {
  const cause = proxyError.cause instanceof Error ? proxyError.cause.message : undefined;
  // 503s repeat the token manager's own error log for every request: keep them below error level.
  logger[proxyError.status === 503 ? 'warn' : 'error'](
    { reqId: context.id, upstream: context.route?.upstream.name, code: proxyError.code, cause },
    proxyError.message,
  );
}

function logAccess(context: RequestContext, res: ServerResponse, accessLog: AccessLog): void {
  accessLog({
    reqId: context.id,
    upstream: context.route?.upstream.name,
    method: res.req.method ?? '',
    path: context.route ? context.logPath : withoutQuery(context.logPath),
    status: context.status || res.statusCode,
    durationMs: Math.round((performance.now() - context.startedAt) * 100) / 100,
    replayed: context.replayed,
    generation: context.generation,
    error: context.errorCode,
    aborted: !res.writableFinished,
  });
}

function withoutQuery(url: string): string {
  const queryStart = url.indexOf('?');
  return (queryStart === -1 ? url : url.slice(0, queryStart)).slice(0, 200);
}
