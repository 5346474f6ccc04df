import { createHash } from 'node:crypto';

/** A short, stable, non-reversible name for a token: the first 8 hex digits of its SHA-256. */
export function fingerprint(token: string | undefined): string | undefined {
  return token === undefined ? undefined : createHash('sha256').update(token).digest('hex').slice(0, 8);
}
