import { jsonReply, textReply, xmlElement, xmlReply, type Reply } from './http-io.js';
import type { ResolvedOptions } from './options.js';
import type { IssuedPair } from './token-store.js';
import { formatExpiresIn, type GrantError, type WireFormat } from './wire-format.js';

// The trap from docs/providers.md: instances serve JSON token bodies labelled text/html.
const JSON_AS_HTML = 'text/html; charset=utf-8';

// Undocumented upstream [I]; wording chosen to be plausible, clients must key on `error` only.
const GRANT_DESCRIPTIONS: Readonly<Record<GrantError, string>> = {
  unknown: 'Invalid refresh token',
  spent: 'Invalid refresh token',
  expired: 'Refresh token expired',
  'session-dead': 'Invalid refresh token',
  'bad-code': 'Invalid authorization code',
  'bad-user-credentials': 'Invalid user credentials',
};

/** Collaborate (HighQ): body client credentials, XML or JSON-as-HTML token bodies, 403 on expiry. */
export function collaborateFormat(options: ResolvedOptions): WireFormat {
  const oauthError = (status: number, error: string, description: string): Reply =>
    options.format === 'xml'
      ? xmlReply(status, xmlElement('error', { error, error_description: description }))
      : jsonReply(status, { error, error_description: description }, JSON_AS_HTML);

  return {
    tokenPaths: ['/acme/api/oauth2/token'],
    apiBasePath: '/acme/api',
    acceptsJsonBody: false,
    supportsPasswordGrant: false,
    checkHeaders(req) {
      // HighQ takes client credentials in the body only [C]; a client sending Basic is misconfigured.
      const auth = req.headers.authorization ?? '';
      return /^basic\b/i.test(auth) ? oauthError(401, 'invalid_client', 'Basic authentication not supported') : null;
    },
    checkBodyClient(params) {
      const ok = params.get('client_id') === options.clientId && params.get('client_secret') === options.clientSecret;
      return ok ? null : oauthError(401, 'invalid_client', 'Invalid client credentials');
    },
    tokenSuccess(pair) {
      return options.format === 'xml'
        ? xmlReply(200, xmlElement('TokenResponse', tokenFields(options, pair)))
        : jsonReply(200, tokenFields(options, pair), JSON_AS_HTML);
    },
    grantError: (reason) => oauthError(400, 'invalid_grant', GRANT_DESCRIPTIONS[reason]),
    requestError: (error, description) => oauthError(400, error, description),
    apiRejection: () => textReply(403, 'Access denied'),
    apiSuccess(echo, req) {
      // The resource API answers XML unless asked for JSON [C].
      const wantsJson = (req.headers.accept ?? '').toLowerCase().includes('application/json');
      return wantsJson ? jsonReply(200, echo) : xmlReply(200, '<response><ok>true</ok></response>');
    },
  };
}

function tokenFields(options: ResolvedOptions, pair: IssuedPair): Record<string, string | number> {
  const fields: Record<string, string | number> = {
    access_token: pair.accessToken,
    expires_in: formatExpiresIn(options),
    refresh_token: pair.refreshToken,
    token_type: 'bearer',
    useremail: 'user@x.com',
  };
  if (pair.refreshExpiresIn !== null) {
    // Seen in the wild as a numeric string ("31536000") [C]; follow expiresInAs for string vs number.
    fields['refresh_token_expires_in'] = options.expiresInAs === 'string' ? String(pair.refreshExpiresIn) : pair.refreshExpiresIn;
  }
  return fields;
}
