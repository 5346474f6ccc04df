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
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW/.test(code)) {
    // No TLS version both sides accept: an old server below the 1.2 floor, or a minVersion above what it speaks.
    const minimum = egress.tls?.minVersion ?? 'TLSv1.2';
    return minimum === 'TLSv1.3'
      ? `${peer}: the TLS handshake failed: it does not speak ${minimum}, which ${tls}.minVersion requires (${code})`
      : `${peer}: the TLS handshake failed: it speaks no TLS version from ${minimum} up, the oldest this proxy uses (${code})`;
  }
  if (/^ERR_SSL_|^ERR_TLS_|^EPROTO$/.test(code)) return `${peer}: the TLS handshake failed (${code})`;
  return undefined;
}

/**
 * The connection closed by the peer in the middle of the TLS handshake (called only for errors before it
 * completed). A server that refuses a client certificate closes with the request still unread, so the
 * kernel answers with a reset that can overtake its alert: ECONNRESET is then all there is to go on.
 */
export function describeHandshakeReset(error: unknown, egress: EgressConfig, peer: string): string | undefined {
  const code = errorCode(error);
  if (code !== 'ECONNRESET') return undefined;
  const tls = egress.tls?.setting ?? `${egress.setting}.tls`;
  return egress.tls?.certFile
    ? `${peer}: closed the connection during the TLS handshake (${code}); it may have refused our client certificate: check ${tls}.certFile is one it accepts`
    : `${peer}: closed the connection during the TLS handshake (${code}); it may require a client certificate (set ${tls}.certFile and ${tls}.keyFile), or not speak TLS on this port`;
}

function errorCode(error: unknown): string | undefined {
  // undici wraps some socket errors; the TLS code is on the cause.
  for (let current = error, depth = 0; current && depth < 4; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
  }
  return undefined;
}
