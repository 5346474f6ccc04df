import type { ServerResponse } from 'node:http';
import type { ProviderContext } from './context.js';
import { rawHeaderValues, sendReply } from './http-io.js';
import type { RecordedRequest } from './types.js';
import type { ApiRejection } from './wire-format.js';

// RFC 6750 section 2.1: "Bearer" 1*SP b64token. Strict on purpose: the proxy must send exactly this.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

/** Answer one resource API request: token check, then the custom handler or the echo. */
export function answerApiRequest(ctx: ProviderContext, req: RecordedRequest, res: ServerResponse): void {
  ctx.apiRequests.push(req);
  ctx.counters.apiCalls++;
  const rejection = rejectionFor(ctx, req);
  if (rejection !== null) {
    ctx.counters.apiRejections++;
    sendReply(res, ctx.format.apiRejection(rejection));
    return;
  }
  const handler = ctx.controls.apiHandler;
  if (handler !== null) {
    handler(req, res);
    return;
  }
  const { path, query } = splitUrl(req.url);
  const echo = { ok: true as const, method: req.method, path, query, bodyLength: req.body.length };
  sendReply(res, ctx.format.apiSuccess(echo, req));
}

function rejectionFor(ctx: ProviderContext, req: RecordedRequest): ApiRejection | null {
  const { controls } = ctx;
  // A forced rejection is consumed by the very next request, whatever token it carries.
  if (controls.apiBehaviour === 'reject-once') {
    controls.apiBehaviour = 'normal';
    return 'expired';
  }
  if (controls.apiBehaviour === 'always-reject') return 'expired';
  // node keeps only the first of duplicate Authorization headers in req.headers; rawHeaders shows them all.
  const values = rawHeaderValues(req.rawHeaders, 'authorization');
  const [only] = values;
  if (only === undefined) return 'missing';
  const match = values.length === 1 ? BEARER.exec(only) : null;
  const token = match?.[1];
  if (token === undefined) return 'invalid';
  const check = ctx.store.checkAccess(token);
  return check === 'valid' ? null : check;
}

/** Split without normalising, so tests see the path exactly as the proxy sent it. */
export function splitUrl(url: string): { path: string; query: string } {
  const at = url.indexOf('?');
  return at < 0 ? { path: url, query: '' } : { path: url.slice(0, at), query: url.slice(at + 1) };
}
