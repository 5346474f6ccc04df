/**
 * One generic OAuth2 token client (RFC 6749 §4.1.3, §4.3, §4.4, §6) configured by a preset: how the body is
 * encoded, where the client credentials go, and how answers are read. It never logs; its errors carry
 * the provider's error code and description but never a token or secret.
 */
import { Agent, errors as undiciErrors, request } from 'undici';
import type { AuthConfig } from '../../config/types.js';
import { ProxyError, TokenEndpointError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createEgressDispatcher } from '../../net/egress-dispatcher.js';
import { describeTlsFailure } from '../../net/egress-failure.js';
import { classifyTokenError } from './classify-token-error.js';
import { parseBody, readTokenResponse, type TokenResponse } from './parse-token-response.js';
import { presetVerdicts } from './verdicts.js';

export type TokenGrant =
  | { readonly type: 'refresh_token'; readonly refreshToken: string }
  | { readonly type: 'password'; readonly username: string; readonly password: string }
  | { readonly type: 'authorization_code'; readonly code: string; readonly redirectUri?: string; readonly codeVerifier?: string }
  /** RFC 6749 §4.4: the client authenticates (clientAuth) and that is the whole grant. */
  | { readonly type: 'client_credentials' };

export interface TokenClient {
  /** Sends one token request. Resolves with the tokens, or rejects with a classified TokenEndpointError. */
  requestToken(grant: TokenGrant): Promise<TokenResponse>;
  close(): Promise<void>;
}

/** A token answer larger than this is not a token answer; reading stops there. */
const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;

/** Throws ConfigError when the token endpoint's TLS files cannot be read or do not load. */
export function createOAuth2Client(auth: AuthConfig, options: { upstream?: string; logger?: Logger } = {}): TokenClient {
  const peer = options.upstream ? `the token endpoint of ${options.upstream}` : 'the token endpoint';
  const agents = createEgressDispatcher({
    egress: auth.egress,
    peer,
    connectTimeoutMs: auth.tokenRequestTimeoutMs,
    logger: options.logger,
    create: (connect) => new Agent({ connect, headersTimeout: auth.tokenRequestTimeoutMs, bodyTimeout: auth.tokenRequestTimeoutMs }),
  });

  async function requestToken(grant: TokenGrant): Promise<TokenResponse> {
    const secrets = secretsIn(grant, auth);
    const sentAt = Date.now();
    let status: number;
    let text: string;
    let retryAfter: string | undefined;
    try {
      const response = await request(auth.tokenUrl, {
        method: 'POST',
        dispatcher: agents.current,
        headers: requestHeaders(auth),
        body: encodeBody(grantFields(grant, auth), auth.bodyEncoding),
        signal: AbortSignal.timeout(auth.tokenRequestTimeoutMs),
      });
      status = response.statusCode;
      retryAfter = headerValue(response.headers['retry-after']);
      text = await readLimited(response.body);
    } catch (error) {
      // Refused or unresolvable, or stopped at the egress proxy or the TLS handshake: the request never left.
      // Anything later (a reset, a timeout) may have been processed.
      const code = (error as { code?: unknown }).code;
      // TLS 1.3 refuses a client certificate after the handshake, so its alert can come here, past the connector.
      const tlsProblem = describeTlsFailure(error, auth.egress, peer);
      const neverSent =
        error instanceof ProxyError ||
        tlsProblem !== undefined ||
        code === 'ECONNREFUSED' ||
        code === 'ENOTFOUND' ||
        code === 'EAI_AGAIN' ||
        error instanceof undiciErrors.ConnectTimeoutError;
      throw new TokenEndpointError('transient', `token request failed: ${tlsProblem ?? describeNetworkError(error)}`, {
        cause: error,
        grantMayBeSpent: !neverSent,
      });
    }
    if (status < 200 || status >= 300) throw classifyTokenError(status, text, retryAfter, secrets, presetVerdicts[auth.preset]);
    const body = parseBody(text);
    const tokens = body ? readTokenResponse(body, sentAt) : undefined;
    if (!tokens) {
      // The provider may have rotated the refresh token and sent it in a body we cannot read: say so.
      throw new TokenEndpointError('transient', `token endpoint answered HTTP ${status} without a readable access_token`, {
        httpStatus: status,
        grantMayBeSpent: true,
      });
    }
    return tokens;
  }

  return { requestToken, close: () => agents.close() };
}

function grantFields(grant: TokenGrant, auth: AuthConfig): Record<string, string> {
  const fields: Record<string, string> = { grant_type: grant.type };
  if (grant.type === 'refresh_token') fields.refresh_token = grant.refreshToken;
  if (grant.type === 'password') Object.assign(fields, { username: grant.username, password: grant.password });
  if (grant.type === 'authorization_code') {
    if (grant.codeVerifier) fields.code_verifier = grant.codeVerifier;
    fields.code = grant.code;
    if (grant.redirectUri) fields.redirect_uri = grant.redirectUri;
  }
  if (auth.scope) fields.scope = auth.scope;
  // Collaborate wants client_id and client_secret in the body; Keycloak public clients send client_id only.
  if ((auth.clientAuth === 'body' || auth.clientAuth === 'none') && auth.clientId) fields.client_id = auth.clientId;
  if (auth.clientAuth === 'body' && auth.clientSecret) fields.client_secret = auth.clientSecret.reveal();
  return fields;
}

function requestHeaders(auth: AuthConfig): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': auth.bodyEncoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
    accept: 'application/json, application/xml;q=0.9, */*;q=0.1',
  };
  if (auth.clientAuth === 'basic' && auth.clientId) {
    // RFC 6749 §2.3.1: both parts are form-encoded before base64.
    const pair = `${formEncode(auth.clientId)}:${formEncode(auth.clientSecret?.reveal() ?? '')}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }
  if (auth.clientAuth === 'headers') {
    if (auth.clientId) headers[auth.clientIdHeader] = auth.clientId;
    if (auth.clientSecret) headers[auth.clientSecretHeader] = auth.clientSecret.reveal();
  }
  // v3 decoupled flow: the token endpoint also wants the TPP's own bearer token.
  if (auth.tppToken) headers.authorization = `Bearer ${auth.tppToken.reveal()}`;
  return headers;
}

function encodeBody(fields: Record<string, string>, encoding: 'form' | 'json'): string {
  return encoding === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString();
}

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_TOKEN_RESPONSE_BYTES) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function secretsIn(grant: TokenGrant, auth: AuthConfig): string[] {
  const secrets = [auth.clientSecret?.reveal(), auth.tppToken?.reveal()];
  if (grant.type === 'refresh_token') secrets.push(grant.refreshToken);
  if (grant.type === 'password') secrets.push(grant.password);
  if (grant.type === 'authorization_code') secrets.push(grant.code, ...(grant.codeVerifier ? [grant.codeVerifier] : []));
  return secrets.filter((secret): secret is string => Boolean(secret));
}

function describeNetworkError(error: unknown): string {
  // Already names the peer and the setting to change.
  if (error instanceof ProxyError) return error.message;
  if (error instanceof undiciErrors.ConnectTimeoutError) return 'connect timeout';
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) return 'timed out';
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'network error';
}
