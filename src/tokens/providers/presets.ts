/**
 * What differs between the three APIs (see docs/providers.md), expressed as settings of one generic
 * OAuth2 refresh client. A preset only fills in defaults; every setting can be overridden in proxy.yaml.
 */
import type { PresetName } from '../../config/schema.js';
import type { TokenFailureKind } from '../../errors.js';

/** An error answer from a token endpoint that the provider's own format explains (see classify-token-error.ts). */
export interface ProviderAnswer {
  /** oauth: RFC 6749 §5.2 {"error": …} in JSON or XML; v3-envelope: {"error":{"failures":[{code}]}}; gateway: IBM API Connect {"httpMessage": …}. */
  readonly shape: 'oauth' | 'v3-envelope' | 'gateway';
  readonly code: string | undefined;
  readonly description: string | undefined;
}

export type ClientAuth = 'body' | 'basic' | 'headers' | 'none';

export interface Preset {
  /** Where the client id/secret go on token requests. */
  readonly clientAuth: ClientAuth;
  readonly bodyEncoding: 'form' | 'json';
  /** Upstream statuses that mean "this access token is no longer accepted". */
  readonly replayOn: readonly number[];
  /** A client id the provider publishes (Apiax's public client), used when none is configured. */
  readonly defaultClientId?: string;
  /** Whether the provider needs a client secret at all. */
  readonly needsClientSecret: boolean;
  /** Header names for clientAuth "headers" (v3 / IBM API Connect gateway). */
  readonly clientIdHeader: string;
  readonly clientSecretHeader: string;
  /**
   * The provider's documented verdicts beyond RFC 6749's `invalid_grant` / `invalid_client`: answers in its
   * own error format that mean the credential (or the client) is rejected for good. Anything it does not
   * recognise is an outage, never a verdict.
   */
  readonly verdictOf?: (status: number, answer: ProviderAnswer) => Exclude<TokenFailureKind, 'transient'> | undefined;
}

export const presets: Readonly<Record<PresetName, Preset>> = {
  // HighQ: credentials in the body, never Basic; expired tokens get 403 "Access denied", not 401.
  collaborate: {
    clientAuth: 'body',
    bodyEncoding: 'form',
    replayOn: [401, 403],
    needsClientSecret: true,
    clientIdHeader: 'x-ibm-client-id',
    clientSecretHeader: 'x-ibm-client-secret',
  },
  // Keycloak public client: client_id=integration-api in the body, no secret.
  apiax: {
    clientAuth: 'none',
    bodyEncoding: 'form',
    replayOn: [401],
    defaultClientId: 'integration-api',
    needsClientSecret: false,
    clientIdHeader: 'x-ibm-client-id',
    clientSecretHeader: 'x-ibm-client-secret',
  },
  // Nordea v3: client credentials in X-IBM-Client-Id / X-IBM-Client-Secret headers.
  v3: {
    clientAuth: 'headers',
    bodyEncoding: 'form',
    replayOn: [401],
    needsClientSecret: true,
    clientIdHeader: 'x-ibm-client-id',
    clientSecretHeader: 'x-ibm-client-secret',
    // A spent or expired refresh token is a 400 in v3's envelope (e.g. "Oauth code expired"); request
    // validation failures share the envelope but say nothing about the token. The API gateway in front
    // answers an unknown client with its own 401 body, and v3 itself with error.apikey.* codes.
    verdictOf(status, answer) {
      if (status === 400 && answer.shape === 'v3-envelope' && answer.code && !answer.code.startsWith('error.validation')) return 'credential_dead';
      if (status === 401 && answer.shape === 'gateway' && answer.code === 'Unauthorized') return 'client_rejected';
      if (status === 401 && answer.shape === 'v3-envelope' && answer.code?.startsWith('error.apikey')) return 'client_rejected';
      return undefined;
    },
  },
  // RFC 6749 §2.3.1: servers must support HTTP Basic for confidential clients.
  oauth2: {
    clientAuth: 'basic',
    bodyEncoding: 'form',
    replayOn: [401],
    needsClientSecret: false,
    clientIdHeader: 'x-client-id',
    clientSecretHeader: 'x-client-secret',
  },
};
