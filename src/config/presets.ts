/**
 * What differs between the three APIs (see docs/providers.md), expressed as settings of one generic
 * OAuth2 refresh client. A preset only fills in defaults; every setting can be overridden in proxy.yaml.
 */
import type { PresetName } from './schema.js';

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
