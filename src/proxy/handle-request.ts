/**
 * The request path, as a short sequence of named steps:
 *   resolve target → take token (in memory) → read body if replayable → forward → maybe replay once → log.
 * Per-request state lives in one RequestContext. Nothing here reads the store, a file or the config.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors as undiciErrors } from 'undici';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { createAccessLog, type AccessLog } from './access-log.js';
import type { CurrentToken } from '../tokens/token-manager.js';
import { sendProxyError } from './error-response.js';
import { forward, sendHeld, type ForwardResult } from './forward.js';
import { upstreamRequestHeaders } from './header-rules.js';
import { NO_BODY, hasBody, readReplayableBody } from './request-body.js';
import type { Route } from './route.js';
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
}

const SLASH = 0x2f;

/** Request ids from clients are kept only when they are short and plain, so they cannot inject into logs. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestHandlerOptions {
  resolveTarget: ReturnType<typeof createTargetResolver<Route>>;
  logger: Logger;
  accessLog: boolean;
  /** Counts requests that matched no route (404, 400), under upstream="". */
  countUnrouted(status: number): void;
}

export function createRequestHandler(options: RequestHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { resolveTarget, logger, accessLog, countUnrouted } = options;
  const accessLogger = accessLog ? createAccessLog(logger) : undefined;

  return (req, res) => {
    const incomingId = req.headers['x-request-id'];
    const context: RequestContext = {
      id: typeof incomingId === 'string' && SAFE_REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
      startedAt: performance.now(),
      route: undefined,
      logPath: '',
      status: 0,
      replayed: false,
      generation: undefined,
      errorCode: undefined,
    };
    res.once('close', () => {
      if (context.route) context.route.countRequest(context.status || res.statusCode);
      else countUnrouted(context.status || res.statusCode);
      if (accessLogger) logAccess(context, res, accessLogger);
    });
    handle(req, res, context).catch((error: unknown) => failRequest(res, context, error, logger));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    // TRACE would echo the attached bearer token back to the client (RFC 9110 §9.3.8 warns of exactly this).
    if (req.method === 'TRACE' || req.method === 'CONNECT') throw new ProxyError('METHOD_NOT_ALLOWED', `${req.method} is not allowed`);
    const url = req.url ?? '';
    context.logPath = url;
    // Only absolute-form needs to know which listener the request came in on.
    const host = url.charCodeAt(0) === SLASH ? undefined : hostNamingListener(req.headers.host, req.socket.localAddress, req.socket.localPort);
    const target = resolveTarget(url, host);
    const route = target.route;
    context.route = route;
    context.logPath = target.logPath;

    const token = route.tokens.current() ?? (await route.tokens.acquire());
    const body = hasBody(req) ? await readReplayableBody(req, route.upstream.maxReplayBodyBytes) : NO_BODY;
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
        body: body.replayable ? body.bytes : req,
        headersTimeoutMs: route.upstream.headersTimeoutMs,
        bodyIdleTimeoutMs: route.upstream.bodyIdleTimeoutMs,
      };
      const started = performance.now();
      const result = await forward(route.pool, request, res, holdStatus);
      route.upstreamDuration.observe((performance.now() - started) / 1000);
      return result;
    };

    const replayOn = route.upstream.replayOn;
    const first = await send(token, (status) => {
      if (!replayOn.has(status)) return false;
      if (body.replayable) return route.tokens.replayDecision(token.generation) !== 'none';
      // A streamed body cannot be sent twice, but the next request should find a fresh token.
      route.tokens.rejectedWithoutReplay(token.generation);
      return false;
    });
    if (first.kind !== 'held') return settle(res, context, first);

    const fresh = await route.tokens.replacementFor(token.generation);
    if (!fresh) {
      route.tokens.replayEnded('no_new_token');
      context.status = first.response.status;
      return sendHeld(res, first.response);
    }
    context.replayed = true;
    const second = await send(fresh, () => false);
    const accepted = second.kind === 'sent' && !replayOn.has(second.status);
    if (accepted) route.tokens.confirmReplayAccepted(fresh.generation);
    route.tokens.replayEnded(accepted ? 'accepted' : 'rejected');
    settle(res, context, second);
  }
}

function settle(res: ServerResponse, context: RequestContext, result: ForwardResult): void {
  if (result.kind === 'sent') {
    context.status = result.status;
    return;
  }
  if (result.kind === 'held') {
    context.status = result.response.status;
    return sendHeld(res, result.response);
  }
  if (result.responseStarted) {
    context.errorCode = 'UPSTREAM_BODY_ERROR';
    return;
  }
  if (res.destroyed) return; // the client went away first; nobody to answer
  throw upstreamFailure(result.error, context.route?.upstream.name ?? '');
}

function upstreamFailure(error: Error, upstream: string): ProxyError {
  if (error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.HeadersTimeoutError) {
    return new ProxyError('UPSTREAM_TIMEOUT', `upstream ${upstream} did not answer in time`, { cause: error });
  }
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET' || code === 'EAI_AGAIN') {
    return new ProxyError('UPSTREAM_UNREACHABLE', `upstream ${upstream} is unreachable (${String(code)})`, { cause: error });
  }
  if (error instanceof undiciErrors.RequestAbortedError) {
    return new ProxyError('REQUEST_BODY_ERROR', 'the request was aborted while being forwarded', { cause: error });
  }
  return new ProxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} failed: ${typeof code === 'string' ? code : error.name}`, { cause: error });
}


function failRequest(res: ServerResponse, context: RequestContext, error: unknown, logger: Logger): void {
  const proxyError = error instanceof ProxyError ? error : new ProxyError('INTERNAL', 'internal error', { cause: error });
  context.status = proxyError.status;
  context.errorCode = proxyError.code;
  if (proxyError.status >= 500) {
    const cause = proxyError.cause instanceof Error ? proxyError.cause.message : undefined;
    // 503s repeat the token manager's own error log for every request: keep them below error level.
    logger[proxyError.status === 503 ? 'warn' : 'error']({ reqId: context.id, upstream: context.route?.upstream.name, code: proxyError.code, cause }, proxyError.message);
  }
  sendProxyError(res, proxyError, context.id);
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
