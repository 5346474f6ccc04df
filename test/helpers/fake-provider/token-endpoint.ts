import { STATUS_CODES } from 'node:http';
import type { ProviderContext } from './context.js';
import { mediaType, textReply, type Reply } from './http-io.js';
import type { GrantOutcome } from './token-store.js';
import type { RecordedRequest } from './types.js';
import type { Params } from './wire-format.js';

type ParsedParams = { ok: true; params: Params } | { ok: false; description: string };

/**
 * Answer one token endpoint request. Returns null when the request is to be dropped unanswered (the
 * provider closed while the answer was delayed, or the test discarded it at the gate).
 * The grant is processed after the gate and the delay, so a client that times out or dies may still have
 * spent its refresh token: exactly the ambiguity a real slow provider creates.
 */
export async function answerTokenRequest(ctx: ProviderContext, req: RecordedRequest, tokenPath: string): Promise<Reply | null> {
  ctx.tokenRequests.push(req);
  if (req.method !== 'POST') {
    return { ...textReply(405, 'Method Not Allowed'), headers: { 'content-type': 'text/plain', allow: 'POST' } };
  }
  ctx.counters.tokenCalls++;
  if ((await ctx.gate.enter(req)) === 'discard') return null;
  if (!(await ctx.sleep(ctx.controls.tokenDelayMs))) return null;
  return takeInjectedFailure(ctx) ?? processGrant(ctx, req, tokenPath);
}

/** failNextTokenCalls: answered before any check, like an overloaded gateway; no token is spent. */
function takeInjectedFailure(ctx: ProviderContext): Reply | null {
  const failures = ctx.controls.failures;
  if (failures.remaining <= 0) return null;
  failures.remaining--;
  const body = failures.body ?? STATUS_CODES[failures.status] ?? 'Error';
  return { status: failures.status, headers: { 'content-type': guessContentType(body), ...failures.headers }, body };
}

function guessContentType(body: string): string {
  const first = body.trimStart()[0];
  if (first === '{' || first === '[') return 'application/json';
  if (first === '<') return 'application/xml';
  return 'text/plain; charset=utf-8';
}

function processGrant(ctx: ProviderContext, req: RecordedRequest, tokenPath: string): Reply {
  const { format } = ctx;
  const headerProblem = format.checkHeaders(req, tokenPath);
  if (headerProblem !== null) return headerProblem;
  const parsed = parseParams(req, format.acceptsJsonBody);
  if (!parsed.ok) return format.requestError('invalid_request', parsed.description);
  const { params } = parsed;
  const clientProblem = format.checkBodyClient(params, req);
  if (clientProblem !== null) {
    if (clientProblem.body.includes('invalid_client')) ctx.clientCounters.invalidClients++;
    return clientProblem;
  }

  const grantType = params.get('grant_type');
  switch (grantType) {
    case 'refresh_token':
      return refreshGrant(ctx, params);
    case 'authorization_code':
      return codeGrant(ctx, params);
    case 'password':
      if (format.supportsPasswordGrant) return passwordGrant(ctx, params);
      break;
    case 'client_credentials':
      if (format.clientCredentialsSuccess) {
        ctx.clientCounters.clientCredentialsGrants++;
        return format.clientCredentialsSuccess(ctx.store.issueAccessOnly());
      }
      break;
    case undefined:
      return format.requestError('invalid_request', 'Missing parameter: grant_type');
  }
  return format.requestError('unsupported_grant_type', `Unsupported grant_type: ${grantType}`);
}

function refreshGrant(ctx: ProviderContext, params: Params): Reply {
  const token = params.get('refresh_token');
  if (token === undefined || token === '') {
    return ctx.format.requestError('invalid_request', 'Missing parameter: refresh_token');
  }
  ctx.presentations.set(token, (ctx.presentations.get(token) ?? 0) + 1);
  const outcome = ctx.store.redeemRefresh(token);
  if (outcome.ok) ctx.counters.refreshGrants++;
  else if (outcome.reason === 'spent') ctx.counters.reuseAttempts++;
  return grantReply(ctx, outcome);
}

function codeGrant(ctx: ProviderContext, params: Params): Reply {
  const code = params.get('code');
  if (code === undefined || code === '') return ctx.format.requestError('invalid_request', 'Missing parameter: code');
  return grantReply(ctx, ctx.store.redeemCode(code));
}

function passwordGrant(ctx: ProviderContext, params: Params): Reply {
  const { username, password } = ctx.options;
  if (params.get('username') !== username || params.get('password') !== password) {
    ctx.counters.invalidGrants++;
    return ctx.format.grantError('bad-user-credentials');
  }
  return ctx.format.tokenSuccess(ctx.store.login());
}

function grantReply(ctx: ProviderContext, outcome: GrantOutcome): Reply {
  if (outcome.ok) return ctx.format.tokenSuccess(outcome.pair);
  ctx.counters.invalidGrants++;
  return ctx.format.grantError(outcome.reason);
}

function parseParams(req: RecordedRequest, acceptsJson: boolean): ParsedParams {
  const type = mediaType(req);
  if (type === 'application/x-www-form-urlencoded') return parseForm(req.body.toString('utf8'));
  if (type === 'application/json' && acceptsJson) return parseJson(req.body.toString('utf8'));
  return { ok: false, description: `Unsupported content type: ${type || '(none)'}` };
}

function parseForm(text: string): ParsedParams {
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
    // RFC 6749 section 3.2: request parameters MUST NOT be included more than once.
    if (params.has(key)) return { ok: false, description: `Duplicate parameter: ${key}` };
    params.set(key, value);
  }
  return { ok: true, params };
}

function parseJson(text: string): ParsedParams {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, description: 'Malformed JSON body' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, description: 'JSON body must be an object' };
  }
  const params = new Map<string, string>();
  for (const [key, field] of Object.entries(value)) {
    if (typeof field !== 'string') return { ok: false, description: `Parameter ${key} must be a string` };
    params.set(key, field);
  }
  return { ok: true, params };
}
