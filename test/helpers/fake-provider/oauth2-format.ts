import { jsonReply, type Reply } from './http-io.js';
import type { ResolvedOptions } from './options.js';
import { formatExpiresIn, type GrantError, type Params, type WireFormat } from './wire-format.js';
import type { RecordedRequest } from './types.js';

// RFC 6749 §5.2 wording of a plain authorization server.
const GRANT_DESCRIPTIONS: Readonly<Record<GrantError, string>> = {
  unknown: 'Invalid refresh token',
  spent: 'Refresh token already used',
  expired: 'Refresh token expired',
  'session-dead': 'Session not active',
  'bad-code': 'Invalid authorization code',
  'bad-user-credentials': 'Invalid user credentials',
};

type ClientCheck = { ok: true } | { ok: false; reply: Reply };

/**
 * A generic RFC 6749 authorization server (the oauth2 preset): the client authenticates with HTTP Basic
 * (client_secret_basic, which §2.3.1 makes mandatory) or in the body (client_secret_post), never both; it
 * offers the refresh_token, authorization_code and client_credentials grants, the last without a refresh
 * token (§4.4.3). RFC 6750 challenges on the API.
 */
export function oauth2Format(options: ResolvedOptions): WireFormat {
  const oauthError = (status: number, error: string, description: string, headers: Record<string, string> = {}): Reply => {
    const reply = jsonReply(status, { error, error_description: description });
    return { ...reply, headers: { ...reply.headers, 'cache-control': 'no-store', ...headers } };
  };
  const invalidClient = (viaBasic: boolean): Reply =>
    // §5.2: a client that tried Basic gets 401 with a Basic challenge.
    oauthError(401, 'invalid_client', 'Client authentication failed', viaBasic ? { 'www-authenticate': 'Basic realm="oauth2"' } : {});

  function checkClient(params: Params, req: RecordedRequest): ClientCheck {
    const basic = /^basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const inBody = params.has('client_secret');
    if (basic && inBody) return { ok: false, reply: oauthError(400, 'invalid_request', 'More than one client authentication method') };
    if (basic) {
      const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const id = formDecode(decoded.slice(0, colon));
      const secret = formDecode(decoded.slice(colon + 1));
      const ok = colon > 0 && id === options.clientId && options.clientSecret !== null && secret === options.clientSecret;
      return ok ? { ok: true } : { ok: false, reply: invalidClient(true) };
    }
    const id = params.get('client_id');
    const ok = id === options.clientId && (options.clientSecret === null ? !inBody : params.get('client_secret') === options.clientSecret);
    return ok ? { ok: true } : { ok: false, reply: invalidClient(false) };
  }

  return {
    tokenPaths: ['/oauth2/token'],
    apiBasePath: '/api',
    acceptsJsonBody: false,
    supportsPasswordGrant: false,
    checkHeaders: () => null,
    checkBodyClient(params, req) {
      const check = checkClient(params, req);
      if (!check.ok) return check.reply;
      // §4.4: only a confidential client may use client_credentials.
      if (params.get('grant_type') === 'client_credentials' && options.clientSecret === null)
        return oauthError(400, 'unauthorized_client', 'The client is not authorized to use this grant type');
      return null;
    },
    tokenSuccess(pair) {
      return jsonReply(200, {
        access_token: pair.accessToken,
        token_type: 'Bearer',
        expires_in: formatExpiresIn(options),
        refresh_token: pair.refreshToken,
      });
    },
    clientCredentialsSuccess(accessToken) {
      return jsonReply(200, { access_token: accessToken, token_type: 'Bearer', expires_in: formatExpiresIn(options) });
    },
    grantError: (reason) => oauthError(400, 'invalid_grant', GRANT_DESCRIPTIONS[reason]),
    requestError: (error, description) => oauthError(400, error, description),
    apiRejection(reason) {
      const challenge = reason === 'missing' ? 'Bearer realm="oauth2"' : 'Bearer error="invalid_token"';
      return {
        ...jsonReply(401, { error: 'invalid_token', error_description: reason === 'expired' ? 'Token expired' : 'Token invalid' }),
        headers: { 'content-type': 'application/json', 'www-authenticate': challenge },
      };
    },
    apiSuccess: (echo) => jsonReply(200, echo),
  };
}

/** RFC 6749 §2.3.1: both parts of the Basic pair are form-encoded. */
function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}
