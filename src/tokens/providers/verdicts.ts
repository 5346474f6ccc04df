/**
 * The providers' documented verdicts beyond RFC 6749's `invalid_grant` / `invalid_client`: answers in their
 * own error formats that mean the credential (or the client) is rejected for good. Anything a preset does
 * not recognise here is an outage, never a verdict (see classify-token-error.ts and docs/providers.md).
 */
import type { PresetName } from '../../config/schema.js';
import type { TokenFailureKind } from '../../errors.js';

/** An error answer from a token endpoint, in the shape the provider wrote it. */
export interface ProviderAnswer {
  /** oauth: RFC 6749 §5.2 {"error": …} in JSON or XML; v3-envelope: {"error":{"failures":[{code}]}}; gateway: IBM API Connect {"httpMessage": …}. */
  readonly shape: 'oauth' | 'v3-envelope' | 'gateway';
  readonly code: string | undefined;
  readonly description: string | undefined;
}

export type Verdict = (status: number, answer: ProviderAnswer) => Exclude<TokenFailureKind, 'transient'> | undefined;

export const presetVerdicts: Readonly<Partial<Record<PresetName, Verdict>>> = {
  // A spent or expired refresh token is a 400 in v3's envelope (e.g. "Oauth code expired"); request
  // validation failures share the envelope but say nothing about the token. The API gateway in front
  // answers an unknown client with its own 401 body, and v3 itself with error.apikey.* codes.
  v3(status, answer) {
    if (status === 400 && answer.shape === 'v3-envelope' && answer.code && !answer.code.startsWith('error.validation'))
      return 'credential_dead';
    if (status === 401 && answer.shape === 'gateway' && answer.code === 'Unauthorized') return 'client_rejected';
    if (status === 401 && answer.shape === 'v3-envelope' && answer.code?.startsWith('error.apikey')) return 'client_rejected';
    return undefined;
  },
};
