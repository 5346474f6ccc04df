/**
 * The authorize URL `login` sends the person to (RFC 6749 §4.1.1): auth.authorizeUrl or the one derived
 * from the preset's token URL, with auth.authorizeParams, prompt=consent when offline_access is asked, and
 * the parameters login owns (client, redirect, state, PKCE challenge), which always win.
 */
import type { AuthConfig } from '../config/types.js';
import { CommandError } from '../errors.js';
import type { Pkce } from './pkce.js';

/**
 * OpenID Connect Core §11: a provider issues a refresh token for offline_access only when the authorize
 * request carries prompt=consent (a conforming one drops offline_access otherwise, and then no refresh token
 * comes). An explicit prompt, in auth.authorizeParams or in auth.authorizeUrl's own query, replaces it.
 */
function wantsOfflineAccess(auth: AuthConfig): boolean {
  return (auth.scope ?? '').split(/\s+/).includes('offline_access');
}

/**
 * The authorize URL: auth.authorizeUrl (its own query kept), else derived from the preset's token URL, then
 * auth.authorizeParams, then prompt=consent for offline_access, then login's own parameters, which always win.
 */
export function buildAuthorizeUrl(auth: AuthConfig, redirectUri: string, state: string, pkce: Pick<Pkce, 'challenge' | 'method'>): string {
  const tokenUrl = new URL(auth.tokenUrl);
  let url: URL;
  if (auth.authorizeUrl) {
    url = new URL(auth.authorizeUrl);
  } else if (auth.preset === 'collaborate') {
    // /{instance}/api/oauth2/token → /{instance}/authorize.action
    const instancePath = tokenUrl.pathname.replace(/\/api\/oauth2\/token\/?$/, '');
    if (instancePath === tokenUrl.pathname) {
      throw new CommandError(
        'LOGIN_SETUP_FAILED',
        `cannot derive the authorize URL from tokenUrl ${tokenUrl.origin}${tokenUrl.pathname}: expected it to end in /api/oauth2/token`,
      );
    }
    url = new URL(`${instancePath}/authorize.action`, tokenUrl.origin);
  } else {
    url = new URL('/v3/authorize', tokenUrl.origin);
  }
  for (const [name, value] of Object.entries(auth.authorizeParams)) url.searchParams.set(name, value);
  if (wantsOfflineAccess(auth) && !url.searchParams.has('prompt')) url.searchParams.set('prompt', 'consent');
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', auth.clientId ?? '');
  url.searchParams.set('redirect_uri', redirectUri);
  // Sent to Collaborate too: it does not echo it, but an instance that does gets it checked.
  url.searchParams.set('state', state);
  if (auth.scope) url.searchParams.set('scope', auth.scope);
  url.searchParams.set('code_challenge', pkce.challenge);
  url.searchParams.set('code_challenge_method', pkce.method);
  return url.toString();
}
