/**
 * PKCE (RFC 7636) for `login`: a fresh code verifier per login, and its S256 challenge in the authorize URL.
 * The OAuth 2.0 Security BCP (RFC 9700 §2.1.1) asks every client to use it; providers that do not know it
 * ignore the two extra parameters. It binds the code to this login, so a code that reached the callback
 * from anyone else cannot be exchanged without the verifier, which never leaves this process.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Pkce {
  /** 43 characters of base64url (RFC 7636 §4.1: 43 to 128 unreserved characters). */
  readonly verifier: string;
  /** BASE64URL(SHA256(verifier)) (RFC 7636 §4.2). */
  readonly challenge: string;
  readonly method: 'S256';
}

export function createPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: s256(verifier), method: 'S256' };
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
