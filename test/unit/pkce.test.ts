import { describe, expect, it } from 'vitest';
import { createPkce, s256 } from '../../src/cli/pkce.js';

describe('PKCE for login (RFC 7636)', () => {
  it('computes the S256 challenge of RFC 7636 Appendix B', () => {
    expect(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes a fresh 43-character verifier per login, with its S256 challenge', () => {
    const first = createPkce();
    const second = createPkce();
    expect(first.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.method).toBe('S256');
    expect(first.challenge).toBe(s256(first.verifier));
    expect(second.verifier).not.toBe(first.verifier);
  });
});
