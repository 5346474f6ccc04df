/**
 * What a failed upstream exchange means for the client: the registered code and a message that names the
 * upstream (and, for TLS, the setting that fixes it). Shared by plain requests and WebSocket handshakes,
 * so both answer the same 502 or 504 for the same failure.
 */
import { errors as undiciErrors } from 'undici';
import type { UpstreamConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import { describeTlsFailure } from '../net/egress-failure.js';

export function upstreamFailure(error: Error, config: UpstreamConfig | undefined): ProxyError {
  if (error instanceof ProxyError) return error;
  const upstream = config?.name ?? '';
  // TLS 1.3 servers check the client certificate after the handshake: their refusal comes with the first read.
  const tlsProblem = config && describeTlsFailure(error, config.egress, `upstream ${upstream}`);
  if (tlsProblem) return new ProxyError('UPSTREAM_TLS_FAILED', tlsProblem, { cause: error });
  if (error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.HeadersTimeoutError) {
    return new ProxyError('UPSTREAM_TIMEOUT', `upstream ${upstream} did not answer in time`, { cause: error });
  }
  const code = (error as { code?: unknown }).code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ECONNRESET' ||
    code === 'EAI_AGAIN'
  ) {
    return new ProxyError('UPSTREAM_UNREACHABLE', `upstream ${upstream} is unreachable (${String(code)})`, { cause: error });
  }
  if (error instanceof undiciErrors.RequestAbortedError) {
    return new ProxyError('REQUEST_BODY_ERROR', 'the request was aborted while being forwarded', { cause: error });
  }
  return new ProxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} failed: ${typeof code === 'string' ? code : error.name}`, {
    cause: error,
  });
}
