/**
 * The one definition of a stored token record's shape, checked on every read from every store (memory,
 * file, Redis): a record that does not fit is never used, and the store reports it instead of handing a
 * half-record to the token core. Unknown fields are dropped (a newer version's additions), known ones
 * must have their types.
 */
import { z } from 'zod';
import type { TokenRecord } from './token-store.js';

const epochMs = z.number().finite();

const recordSchema = z.object({
  generation: z.number().int().nonnegative(),
  accessToken: z.string().min(1).optional(),
  accessTokenExpiresAt: epochMs.optional(),
  refreshToken: z.string().min(1).optional(),
  refreshTokenExpiresAt: epochMs.optional(),
  obtainedAt: epochMs,
  source: z.enum(['seed', 'refresh', 'password', 'authorization_code', 'seed-command']),
  refreshInFlight: z
    .object({ since: epochMs, refreshTokenFingerprint: z.string(), owner: z.string(), expiresAt: epochMs.optional() })
    .optional(),
  fetchedAfterRejection: z.literal(true).optional(),
  dead: z.object({ at: epochMs, reason: z.string() }).optional(),
  seedFingerprint: z.string().optional(),
  writer: z.string(),
});

/** The record, or undefined when `value` is not one. */
export function parseTokenRecord(value: unknown): TokenRecord | undefined {
  const parsed = recordSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
