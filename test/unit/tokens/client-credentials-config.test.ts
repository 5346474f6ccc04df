/**
 * What proxy.yaml may say with auth.grant client_credentials: only the oauth2 preset, an authenticating
 * client, no refresh-token settings; missing client credentials are the needs-credentials state, as for
 * every preset.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { parseConfig } from '../../../src/config/load.js';
import type { AuthConfig } from '../../../src/config/types.js';
import { firstTokenHint } from '../../../src/operator-hints.js';

function load(authLines: string[], env: Record<string, string> = {}): AuthConfig {
  const yaml = [
    'store: { type: memory }',
    'upstreams:',
    '  api:',
    '    target: https://api.example.com',
    '    auth:',
    '      tokenUrl: https://id.example.com/oauth2/token',
    ...authLines.map((line) => `      ${line}`),
  ].join('\n');
  const config = parseConfig(yaml, { env });
  return config.upstreams[0]!.auth;
}

function problems(authLines: string[]): readonly string[] {
  try {
    load(authLines);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('the config was accepted');
}

describe('auth.grant client_credentials in proxy.yaml', () => {
  it('is accepted with preset oauth2 and a client id and secret (Basic by default); refresh_token stays the default', () => {
    const auth = load(['preset: oauth2', 'grant: client_credentials', 'clientId: cid', 'clientSecret: secret']);
    expect(auth).toMatchObject({ grant: 'client_credentials', clientAuth: 'basic', missing: [] });
    expect(load(['preset: oauth2', 'clientId: cid']).grant).toBe('refresh_token');
    expect(load(['preset: oauth2', 'grant: client_credentials', 'clientAuth: body', 'clientId: cid', 'clientSecret: s']).clientAuth).toBe(
      'body',
    );
  });

  it.each(['collaborate', 'apiax', 'v3'])('is refused with preset %s, which issues refresh tokens and has no such grant', (preset) => {
    const listed = problems([`preset: ${preset}`, 'grant: client_credentials', 'clientId: cid', 'clientSecret: secret']);
    expect(listed).toContainEqual(
      `upstreams.api.auth.grant: client_credentials works only with preset oauth2; ${preset} issues refresh tokens and has no client_credentials grant (remove grant, or use preset oauth2 for another provider)`,
    );
  });

  it('refuses clientAuth none, and refresh-token settings that would do nothing, all listed at once with their paths', () => {
    const listed = problems([
      'preset: oauth2',
      'grant: client_credentials',
      'clientAuth: none',
      'clientId: cid',
      'refreshToken: rt',
      'username: user',
      'password: pass',
    ]);
    expect(listed).toEqual([
      'upstreams.api.auth.clientAuth: none cannot be used with grant client_credentials, where the client id and secret are the credential; use basic, body or headers',
      'upstreams.api.auth.refreshToken: has no use with grant client_credentials (tokens come from the client id and secret); remove it',
      'upstreams.api.auth.username: has no use with grant client_credentials (tokens come from the client id and secret); remove it',
      'upstreams.api.auth.password: has no use with grant client_credentials (tokens come from the client id and secret); remove it',
    ]);
  });

  it('an empty refreshToken (${VAR:-} unset) is no refresh-token setting', () => {
    const auth = load(['preset: oauth2', 'grant: client_credentials', 'clientId: cid', 'clientSecret: s', 'refreshToken: ${RT:-}']);
    expect(auth.refreshToken).toBeUndefined();
  });

  it('a missing client id or secret is the needs-credentials state with the usual hints (oauth2 needs no secret for refresh tokens)', () => {
    const auth = load(['preset: oauth2', 'grant: client_credentials', 'clientId: ${CID:-}', 'clientSecret: ${CS:-}']);
    expect(auth.missing).toEqual([
      'auth.clientId (e.g. export API_CLIENT_ID=… and restart)',
      'auth.clientSecret (e.g. export API_CLIENT_SECRET=… and restart)',
    ]);
    expect(load(['preset: oauth2', 'clientId: cid']).missing).toEqual([]);
  });

  it('the first-token hint says there is nothing to seed', () => {
    const auth = load(['preset: oauth2', 'grant: client_credentials', 'clientId: cid', 'clientSecret: s']);
    expect(firstTokenHint('api', auth, 'oauth-sidecar')).toBe(
      'none to seed: the proxy gets its tokens with auth.clientId and auth.clientSecret (grant client_credentials) as it starts',
    );
    expect(firstTokenHint('api', load(['preset: oauth2', 'clientId: cid']), 'oauth-sidecar')).toContain('oauth-sidecar seed api');
  });
});
