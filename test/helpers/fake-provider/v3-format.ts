import { randomUUID } from 'node:crypto';
import { jsonReply, type Reply } from './http-io.js';
import type { ResolvedOptions } from './options.js';
import { formatExpiresIn, type WireFormat } from './wire-format.js';

const DECOUPLED_TOKEN_PATH = '/v3/authorize-decoupled/token';

function groupHeader(httpCode: number): Record<string, string | number> {
  return { message_identifier: randomUUID(), response_date_time: new Date().toISOString(), http_code: httpCode };
}

/** v3's error envelope: {"group_header":{…},"error":{"failures":[{code, description}]}}. */
function envelopeError(status: number, code: string, description: string): Reply {
  return jsonReply(status, { group_header: groupHeader(status), error: { failures: [{ code, description }] } });
}

// What the API gateway (IBM API Connect) says before the application sees anything [C].
const GATEWAY_UNAUTHORIZED = jsonReply(401, {
  httpCode: '401',
  httpMessage: 'Unauthorized',
  moreInformation: 'Client id not registered.',
});

/** v3 (Nordea): client credentials in X-IBM-* headers, flat or wrapped bodies, one-time refresh tokens. */
export function v3Format(options: ResolvedOptions): WireFormat {
  return {
    tokenPaths: ['/v3/authorize/token', DECOUPLED_TOKEN_PATH],
    apiBasePath: '/v3/api',
    acceptsJsonBody: true,
    supportsPasswordGrant: false,
    checkHeaders(req, tokenPath) {
      // node lowercases header names, which gives us the case-insensitivity (-Id vs -ID) for free.
      const idOk = req.headers['x-ibm-client-id'] === options.clientId;
      const secretOk = req.headers['x-ibm-client-secret'] === options.clientSecret;
      if (!idOk || !secretOk) return GATEWAY_UNAUTHORIZED;
      const tppOk = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
      if (tokenPath === DECOUPLED_TOKEN_PATH && !tppOk) return envelopeError(401, 'error.token', 'TPP token missing');
      return null;
    },
    checkBodyClient: () => null,
    tokenSuccess(pair) {
      const fields = {
        access_token: pair.accessToken,
        expires_in: formatExpiresIn(options),
        token_type: 'Bearer',
        refresh_token: pair.refreshToken,
      };
      return jsonReply(200, options.wrapped ? { group_header: groupHeader(200), response: fields } : fields);
    },
    // Every dead grant looks the same; only the 400 tells a client its credential is gone [I].
    grantError: () => envelopeError(400, 'error.token.invalid', 'Oauth code expired'),
    requestError: (_error, description) => envelopeError(400, 'error.validation', description),
    apiRejection(reason) {
      return reason === 'expired'
        ? envelopeError(401, 'error.token.expired', 'Token expired')
        : envelopeError(401, 'error.token.invalid', 'Token invalid');
    },
    apiSuccess: (echo) => jsonReply(200, echo),
  };
}
