/**
 * Names what went wrong on the way to a peer in the operator's terms: which TLS check failed and which
 * setting fixes it, or what the egress proxy answered. Used for the proxy's 502 answers, the log, and token
 * request errors. Built from error codes only: never a header, a certificate's content or a credential.
 */
import type { EgressConfig } from '../config/types.js';

/** Node/OpenSSL codes of a server certificate that does not verify. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * The failure described for `peer` ("upstream apiax", "the token endpoint of apiax"), or undefined when
 * the error is not about TLS. The message names the setting to change.
 */
export function describeTlsFailure(error: unknown, egress: EgressConfig, peer: string): string | undefined {
  const code = errorCode(error);
  if (code === undefined) return undefined;
  const tls = egress.tls?.setting ?? `${egress.setting}.tls`;
  if (UNTRUSTED.has(code))
    return `${peer}: its TLS certificate is not trusted (${code}); if a private or inspecting CA signs it, set ${tls}.caFile (or NODE_EXTRA_CA_CERTS)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH')
    return `${peer}: its TLS certificate does not name the host it was reached at (${code}); if it is known by another name, set ${tls}.servername`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `${peer}: its TLS certificate is not valid now (${code})`;
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED/.test(code)) {
    // The server's alert, sent when it refused the handshake: usually about our client certificate.
    return egress.tls?.certFile
      ? `${peer}: refused our client certificate in the TLS handshake (${code}); check ${tls}.certFile is one it accepts`
      : `${peer}: refused the TLS handshake (${code}); it may require a client certificate: set ${tls}.certFile and ${tls}.keyFile`;
  }
  if (/^ERR_SSL_|^ERR_TLS_|^EPROTO$/.test(code)) return `${peer}: the TLS handshake failed (${code})`;
  return undefined;
}

function errorCode(error: unknown): string | undefined {
  // undici wraps some socket errors; the TLS code is on the cause.
  for (let current = error, depth = 0; current && depth < 4; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
  }
  return undefined;
}
