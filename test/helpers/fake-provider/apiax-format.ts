import { jsonReply, type Reply } from './http-io.js';
import type { ResolvedOptions } from './options.js';
import { formatExpiresIn, type GrantError, type WireFormat } from './wire-format.js';

// Keycloak's own error_description strings [C].
const GRANT_DESCRIPTIONS: Readonly<Record<GrantError, string>> = {
  unknown: 'Invalid refresh token',
  spent: 'Stale token',
  expired: 'Token is not active',
  'session-dead': 'Session not active',
  'bad-code': 'Code not valid',
  'bad-user-credentials': 'Invalid user credentials',
};

/** Apiax (Keycloak realm): public client in the body, password grant, RFC 6750 challenges on the API. */
export function apiaxFormat(options: ResolvedOptions): WireFormat {
  const oauthError = (status: number, error: string, description: string): Reply =>
    jsonReply(status, { error, error_description: description });

  return {
    tokenPaths: ['/auth/realms/apiax/protocol/openid-connect/token'],
    apiBasePath: '/api',
    acceptsJsonBody: false,
    supportsPasswordGrant: true,
    checkHeaders: () => null,
    checkBodyClient(params) {
      const idOk = params.get('client_id') === options.clientId;
      const secretOk = options.clientSecret === null || params.get('client_secret') === options.clientSecret;
      return idOk && secretOk ? null : oauthError(401, 'invalid_client', 'Invalid client or Invalid client credentials');
    },
    tokenSuccess(pair) {
      return jsonReply(200, {
        access_token: pair.accessToken,
        expires_in: formatExpiresIn(options),
        // 0 means "no fixed expiry", not "expired" [C].
        refresh_expires_in: pair.refreshExpiresIn ?? 0,
        refresh_token: pair.refreshToken,
        token_type: 'Bearer',
        'not-before-policy': 0,
        session_state: pair.session.id,
        scope: 'profile email',
      });
    },
    // Keycloak answers a wrong password with 401, every other dead grant with 400.
    grantError: (reason) => oauthError(reason === 'bad-user-credentials' ? 401 : 400, 'invalid_grant', GRANT_DESCRIPTIONS[reason]),
    requestError: (error, description) => oauthError(400, error, description),
    apiRejection(reason) {
      // RFC 6750 section 3.1: no error code when the request carried no credentials at all.
      const challenge = reason === 'missing' ? 'Bearer realm="apiax"' : 'Bearer error="invalid_token"';
      const description = reason === 'expired' ? 'Token expired' : 'Token verification failed';
      return {
        ...jsonReply(401, { error: 'invalid_token', error_description: description }),
        headers: { 'content-type': 'application/json', 'www-authenticate': challenge },
      };
    },
    apiSuccess: (echo) => jsonReply(200, echo),
  };
}
