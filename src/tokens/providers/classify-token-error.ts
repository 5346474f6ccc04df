/**
 * Decides what a failed token request means, by meaning and not by status code: only an OAuth error
 * answer (RFC 6749 §5.2 `invalid_grant`, `invalid_client`, `unauthorized_client`) or a preset's documented
 * verdict is a verdict on the credential. Everything else — a WAF or CDN page, a redirect, a 404/405/409
 * without an OAuth body, a 5xx, a rate limit — is an outage: keep the token and retry with backoff, and
 * never write the credential off, because the refresh token may never have reached the provider.
 */
import { TokenEndpointError, type TokenFailureKind } from '../../errors.js';
import { parseBody } from './parse-token-response.js';
import type { ProviderAnswer, Verdict } from './verdicts.js';

/** RFC 6749 §5.2 codes that reject the client itself. */
const CLIENT_VERDICTS = new Set(['invalid_client', 'unauthorized_client']);

/** Longest provider text quoted in a message. */
const MAX_DETAIL_CHARS = 200;

export function classifyTokenError(
  status: number,
  bodyText: string,
  retryAfter: string | undefined,
  secretsToHide: readonly string[],
  presetVerdict?: Verdict,
): TokenEndpointError {
  const answer = providerAnswer(bodyText);
  const detail = sanitize([answer?.code, answer?.description].filter(Boolean).join(': '), secretsToHide);
  const message = `token endpoint answered HTTP ${status}${detail ? ` (${detail})` : ''}`;
  const retryAfterMs = parseRetryAfter(retryAfter);
  const kind = kindOf(status, answer, presetVerdict);
  const details = {
    httpStatus: status,
    ...(answer?.code ? { providerCode: sanitize(answer.code, secretsToHide) } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    grantMayBeSpent: kind === 'transient' && mayHaveProcessed(status),
  };
  return new TokenEndpointError(kind, message, details);
}

function kindOf(status: number, answer: ProviderAnswer | undefined, presetVerdict: Verdict | undefined): TokenFailureKind {
  // A verdict comes with a client error status; a gateway may forward anything on a 3xx, 408, 429 or 5xx.
  if (status < 400 || status >= 500 || status === 408 || status === 429 || !answer) return 'transient';
  const verdict = presetVerdict?.(status, answer);
  if (verdict) return verdict;
  if (answer.shape !== 'oauth') return 'transient';
  if (answer.code === 'invalid_grant') return 'credential_dead';
  if (answer.code && CLIENT_VERDICTS.has(answer.code)) return 'client_rejected';
  // invalid_request, invalid_scope, unsupported_grant_type, temporarily_unavailable…: a configuration or
  // provider problem, not a verdict on this refresh token. Retried (with backoff) and reported.
  return 'transient';
}

/**
 * Whether the provider may have processed the grant behind this answer: a gateway's 500/502/504 can come
 * after the provider rotated the refresh token. Rate limits, 503s, redirects and 4xx come before it.
 */
function mayHaveProcessed(status: number): boolean {
  return status === 500 || status === 502 || status === 504;
}

/** The provider's error code and description from OAuth JSON or XML, v3 envelopes or gateway bodies. */
function providerAnswer(text: string): ProviderAnswer | undefined {
  const body = parseBody(text);
  if (!body) return undefined;
  if (typeof body.error === 'string' && body.error !== '') {
    return { shape: 'oauth', code: body.error, description: stringOrUndefined(body.error_description) };
  }
  const envelope = body.error;
  if (envelope && typeof envelope === 'object') {
    const failures = (envelope as { failures?: unknown }).failures;
    const first = Array.isArray(failures) ? (failures[0] as Record<string, unknown> | undefined) : undefined;
    if (first && typeof first === 'object')
      return { shape: 'v3-envelope', code: stringOrUndefined(first.code), description: stringOrUndefined(first.description) };
    const nested = envelope as Record<string, unknown>;
    if (typeof nested.error === 'string')
      return { shape: 'oauth', code: nested.error, description: stringOrUndefined(nested.error_description) };
    return undefined;
  }
  if (typeof body.httpMessage === 'string')
    return { shape: 'gateway', code: body.httpMessage, description: stringOrUndefined(body.moreInformation) };
  return undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Keeps provider text short, printable, and free of anything we sent (a provider may echo the token).
 * Redaction comes before truncation: cut first, a long echoed token would lose its tail and slip through.
 */
function sanitize(text: string, secrets: readonly string[]): string {
  let clean = text.replace(/[^\x20-\x7e]/g, ' ');
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('[redacted]');
  return clean.length > MAX_DETAIL_CHARS ? `${clean.slice(0, MAX_DETAIL_CHARS)}…` : clean;
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
