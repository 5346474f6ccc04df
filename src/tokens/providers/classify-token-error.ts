/**
 * Decides what a failed token request means (shared/PROVIDERS.md §4): transient failures keep the old
 * token and retry; `invalid_grant` and its equivalents mean the refresh token is spent, expired or revoked.
 */
import { TokenEndpointError, type TokenFailureKind } from '../../errors.js';
import { parseBody } from './parse-token-response.js';

/** Statuses where trying again later can succeed (RFC 9110 §15.5.9 408, RFC 6585 §4 429, 5xx). */
function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** OAuth error codes (RFC 6749 §5.2) that mean the client itself is misconfigured. */
const clientErrors = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_request']);

export function classifyTokenError(status: number, bodyText: string, retryAfter: string | undefined, secretsToHide: readonly string[]): TokenEndpointError {
  const { code, description } = providerError(bodyText);
  const detail = sanitize([code, description].filter(Boolean).join(': '), secretsToHide);
  const message = `token endpoint answered HTTP ${status}${detail ? ` (${detail})` : ''}`;
  const retryAfterMs = parseRetryAfter(retryAfter);
  const details = { httpStatus: status, ...(code ? { providerCode: code } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  return new TokenEndpointError(kindOf(status, code), message, details);
}

function kindOf(status: number, code: string | undefined): TokenFailureKind {
  if (isTransientStatus(status)) return 'transient';
  if (code === 'invalid_grant') return 'credential_dead';
  if (code && clientErrors.has(code)) return 'client_rejected';
  // v3 puts its reasons in error.failures[].code ("error.token.invalid"): a 400 there means the grant is bad.
  if (status === 400) return 'credential_dead';
  return 'client_rejected';
}

/** Pulls the provider's error code and description out of OAuth JSON, XML, v3 envelopes or gateway bodies. */
function providerError(text: string): { code: string | undefined; description: string | undefined } {
  const body = parseBody(text);
  if (!body) return { code: undefined, description: undefined };
  if (typeof body.error === 'string') {
    return { code: body.error, description: stringOrUndefined(body.error_description) };
  }
  const envelope = body.error;
  if (envelope && typeof envelope === 'object') {
    const failures = (envelope as { failures?: unknown }).failures;
    const first = Array.isArray(failures) ? (failures[0] as Record<string, unknown> | undefined) : undefined;
    if (first) return { code: stringOrUndefined(first.code), description: stringOrUndefined(first.description) };
    const nested = envelope as Record<string, unknown>;
    return { code: stringOrUndefined(nested.error), description: stringOrUndefined(nested.error_description) };
  }
  return { code: stringOrUndefined(body.httpMessage), description: stringOrUndefined(body.moreInformation) };
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Keeps provider text short, printable, and free of anything we sent (a provider may echo the token). */
function sanitize(text: string, secrets: readonly string[]): string {
  let clean = text.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('[redacted]');
  return clean;
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
