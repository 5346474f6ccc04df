/**
 * Reads a token endpoint's answer in whatever shape the three APIs use (docs/providers.md):
 * JSON or XML whatever the Content-Type says, flat or wrapped in `response`, `expires_in` as a number,
 * a numeric string, or an epoch in seconds or milliseconds.
 */
import { XMLParser } from 'fast-xml-parser';

export interface TokenResponse {
  readonly accessToken: string;
  /** Epoch ms; undefined when the provider did not say. */
  readonly accessTokenExpiresAt: number | undefined;
  readonly refreshToken: string | undefined;
  /** Epoch ms; undefined when absent or 0 (Keycloak: "no fixed expiry"). */
  readonly refreshTokenExpiresAt: number | undefined;
  readonly tokenType: string | undefined;
}

/** Values above these are epochs rather than durations (docs/providers.md: Apiax calls expires_in a JAVA_TIMESTAMP). */
const EPOCH_SECONDS_THRESHOLD = 1e9;
const EPOCH_MILLIS_THRESHOLD = 1e12;

const xmlParser = new XMLParser({ parseTagValue: false, ignoreAttributes: true, processEntities: true });

/** Parses JSON or XML into a plain object; undefined when the text is neither. */
export function parseBody(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) return asRecord(JSON.parse(trimmed));
    if (trimmed.startsWith('<')) {
      const document = asRecord(xmlParser.parse(trimmed));
      // <TokenResponse>…</TokenResponse>: the single root element holds the fields.
      const roots = document ? Object.entries(document).filter(([name]) => !name.startsWith('?')) : [];
      return roots.length === 1 ? asRecord(roots[0]?.[1]) : document;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The fields of a token response, unwrapping v3's {"group_header":…,"response":{…}} envelope. */
export function tokenFields(body: Record<string, unknown>): Record<string, unknown> {
  const inner = asRecord(body.response);
  return inner && 'access_token' in inner ? inner : body;
}

export function readTokenResponse(body: Record<string, unknown>, sentAt: number): TokenResponse | undefined {
  const fields = tokenFields(body);
  const accessToken = fields.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') return undefined;
  const refreshToken = fields.refresh_token;
  const refreshExpiresIn = fields.refresh_token_expires_in ?? fields.refresh_expires_in;
  return {
    accessToken,
    accessTokenExpiresAt: expiryFrom(fields.expires_in, sentAt),
    refreshToken: typeof refreshToken === 'string' && refreshToken !== '' ? refreshToken : undefined,
    refreshTokenExpiresAt: expiryFrom(refreshExpiresIn, sentAt),
    tokenType: typeof fields.token_type === 'string' ? fields.token_type : undefined,
  };
}

/** Turns an expires_in-style value into an absolute epoch ms; 0, missing or garbage gives undefined. */
export function expiryFrom(value: unknown, sentAt: number): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(number) || number <= 0) return undefined;
  if (number >= EPOCH_MILLIS_THRESHOLD) return number;
  if (number >= EPOCH_SECONDS_THRESHOLD) return number * 1000;
  return sentAt + number * 1000;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
