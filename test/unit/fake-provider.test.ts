import { request } from 'node:http';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider, type FakeProvider, type FakeProviderOptions } from '../helpers/fake-provider.js';

async function start(options: FakeProviderOptions): Promise<FakeProvider> {
  const provider = await startFakeProvider(options);
  onTestFinished(() => provider.close());
  return provider;
}

function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

function bearer(token: string, extra: Record<string, string> = {}): RequestInit {
  return { headers: { authorization: `Bearer ${token}`, ...extra } };
}

interface TokenBody {
  access_token: string;
  refresh_token: string;
  expires_in: unknown;
  [key: string]: unknown;
}

async function tokenBody(res: Response): Promise<TokenBody> {
  expect(res.status).toBe(200);
  return (await res.json()) as TokenBody;
}

const COLLAB_CLIENT = { client_id: 'client-id', client_secret: 'client-secret' };
const V3_CLIENT = { 'X-IBM-Client-Id': 'client-id', 'X-IBM-Client-Secret': 'client-secret' };

describe('fake provider: collaborate', () => {
  it('rotates refresh tokens, rejects a spent one and counts the reuse, without killing the session', async () => {
    const p = await start({ kind: 'collaborate', authorizationCodes: ['code-1'] });
    const first = await tokenBody(await postForm(p.tokenUrl, { ...COLLAB_CLIENT, grant_type: 'authorization_code', code: 'code-1' }));
    expect(first.access_token).toMatch(/^collaborate-at-/);
    expect(first.refresh_token).toMatch(/^collaborate-rt-/);

    const refresh = (rt: string): Promise<Response> =>
      postForm(p.tokenUrl, { ...COLLAB_CLIENT, grant_type: 'refresh_token', refresh_token: rt });
    const secondRes = await refresh(first.refresh_token);
    // The awkward part: JSON labelled as HTML.
    expect(secondRes.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const second = await tokenBody(secondRes);
    expect(second.refresh_token).not.toBe(first.refresh_token);

    const reused = await refresh(first.refresh_token);
    expect(reused.status).toBe(400);
    expect(await reused.json()).toMatchObject({ error: 'invalid_grant' });
    // Collaborate does not revoke the session on reuse: the newest token still works.
    await tokenBody(await refresh(second.refresh_token));

    const codeAgain = await postForm(p.tokenUrl, { ...COLLAB_CLIENT, grant_type: 'authorization_code', code: 'code-1' });
    expect(codeAgain.status).toBe(400);
    expect(p.counters).toEqual({
      tokenCalls: 5,
      refreshGrants: 2,
      reuseAttempts: 1,
      invalidGrants: 2,
      apiCalls: 0,
      apiRejections: 0,
    });
    expect(p.tokenRequests[1]?.body.toString()).toContain(`refresh_token=${first.refresh_token}`);
  });

  it('speaks XML when configured, answers 403 on an expired token, XML unless JSON is accepted', async () => {
    const p = await start({ kind: 'collaborate', format: 'xml', refreshTokenLifetimeSeconds: 31_536_000 });
    const res = await postForm(p.tokenUrl, {
      ...COLLAB_CLIENT,
      grant_type: 'refresh_token',
      refresh_token: p.issueRefreshToken(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/xml');
    const xml = await res.text();
    expect(xml).toMatch(
      /^<TokenResponse><access_token>collaborate-at-[\w-]+<\/access_token><expires_in>3600<\/expires_in><refresh_token>collaborate-rt-[\w-]+<\/refresh_token><token_type>bearer<\/token_type><useremail>user@x\.com<\/useremail><refresh_token_expires_in>31536000<\/refresh_token_expires_in><\/TokenResponse>$/,
    );
    const accessToken = /<access_token>([^<]+)</.exec(xml)?.[1] ?? '';

    const api = `${p.apiBaseUrl}/3/sites?limit=1`;
    const asXml = await fetch(api, bearer(accessToken));
    expect(asXml.status).toBe(200);
    expect(await asXml.text()).toBe('<response><ok>true</ok></response>');
    const asJson = await fetch(api, bearer(accessToken, { accept: 'application/json' }));
    expect(await asJson.json()).toEqual({ ok: true, method: 'GET', path: '/acme/api/3/sites', query: 'limit=1', bodyLength: 0 });

    p.expireAccessTokens();
    const expired = await fetch(api, bearer(accessToken));
    expect(expired.status).toBe(403);
    expect(await expired.text()).toBe('Access denied');
    expect((await fetch(api)).status).toBe(403);
    expect(p.counters.apiCalls).toBe(4);
    expect(p.counters.apiRejections).toBe(2);

    const spent = await postForm(p.tokenUrl, { ...COLLAB_CLIENT, grant_type: 'refresh_token', refresh_token: 'nope' });
    expect(spent.status).toBe(400);
    expect(await spent.text()).toBe(
      '<error><error>invalid_grant</error><error_description>Invalid refresh token</error_description></error>',
    );
  });

  it('refuses client credentials sent as Basic auth, or wrong ones in the body', async () => {
    const p = await start({ kind: 'collaborate' });
    const fields = { grant_type: 'refresh_token', refresh_token: p.issueRefreshToken() };
    const basic = await postForm(p.tokenUrl, fields, {
      authorization: `Basic ${Buffer.from('client-id:client-secret').toString('base64')}`,
    });
    expect(basic.status).toBe(401);
    expect(await basic.json()).toMatchObject({ error: 'invalid_client' });
    const wrong = await postForm(p.tokenUrl, { ...fields, client_id: 'client-id', client_secret: 'wrong' });
    expect(wrong.status).toBe(401);
    // Neither attempt spent the token.
    await tokenBody(await postForm(p.tokenUrl, { ...fields, ...COLLAB_CLIENT }));
  });
});

describe('fake provider: apiax (Keycloak)', () => {
  it('kills the whole session on reuse of a spent refresh token, newest tokens included', async () => {
    const p = await start({ kind: 'apiax' });
    const refresh = (rt: string): Promise<Response> =>
      postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'refresh_token', refresh_token: rt });
    const login = await tokenBody(
      await postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'password', username: 'user', password: 'pass' }),
    );
    expect(login).toMatchObject({ token_type: 'Bearer', refresh_expires_in: 0, 'not-before-policy': 0 });
    const newest = await tokenBody(await refresh(login.refresh_token));
    expect((await fetch(`${p.apiBaseUrl}/things`, bearer(newest.access_token))).status).toBe(200);

    const reuse = await refresh(login.refresh_token);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toEqual({ error: 'invalid_grant', error_description: 'Stale token' });

    const afterKill = await refresh(newest.refresh_token);
    expect(afterKill.status).toBe(400);
    expect(await afterKill.json()).toEqual({ error: 'invalid_grant', error_description: 'Session not active' });
    const api = await fetch(`${p.apiBaseUrl}/things`, bearer(newest.access_token));
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(p.counters).toMatchObject({ refreshGrants: 1, reuseAttempts: 1, invalidGrants: 2, apiRejections: 1 });
  });

  it('reports unknown and expired refresh tokens with Keycloak wording, and bad users with 401', async () => {
    const p = await start({ kind: 'apiax', refreshTokenLifetimeSeconds: 0.05 });
    const refresh = (rt: string): Promise<Response> =>
      postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'refresh_token', refresh_token: rt });
    const seed = p.issueRefreshToken();
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await (await refresh(seed)).json()).toMatchObject({ error_description: 'Token is not active' });
    expect(await (await refresh('apiax-rt-unknown')).json()).toMatchObject({ error_description: 'Invalid refresh token' });
    const badUser = await postForm(p.tokenUrl, {
      client_id: 'integration-api',
      grant_type: 'password',
      username: 'user',
      password: 'wrong',
    });
    expect(badUser.status).toBe(401);
    expect(await badUser.json()).toMatchObject({ error: 'invalid_grant' });
    const badClient = await postForm(p.tokenUrl, { client_id: 'other', grant_type: 'refresh_token', refresh_token: seed });
    expect(badClient.status).toBe(401);
    expect(p.counters.invalidGrants).toBe(3);
  });

  it('rejects a request carrying two Authorization headers even if one is valid', async () => {
    const p = await start({ kind: 'apiax' });
    const { access_token: token } = await tokenBody(
      await postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'password', username: 'user', password: 'pass' }),
    );
    const status = await new Promise<number | undefined>((resolve, reject) => {
      // Flat [name, value, …] form: fetch cannot repeat Authorization, node's client can.
      // The array form adds no Host header, and node's server answers 400 without one.
      const host = new URL(p.origin).host;
      const headers = ['host', host, 'authorization', `Bearer ${token}`, 'authorization', `Bearer ${token}`];
      const req = request(`${p.apiBaseUrl}/x`, { headers });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(401);
    expect((await fetch(`${p.apiBaseUrl}/x`, { headers: { authorization: `bearer ${token}` } })).status).toBe(401);
    expect((await fetch(`${p.apiBaseUrl}/x`, bearer(token))).status).toBe(200);
  });
});

describe('fake provider: v3', () => {
  it('authenticates the client by X-IBM headers in any case and can wrap the response', async () => {
    const p = await start({ kind: 'v3', wrapped: true, authorizationCodes: ['c1'] });
    const noClient = await postForm(p.tokenUrl, { grant_type: 'authorization_code', code: 'c1' });
    expect(noClient.status).toBe(401);
    expect(await noClient.json()).toEqual({
      httpCode: '401',
      httpMessage: 'Unauthorized',
      moreInformation: 'Client id not registered.',
    });
    const ok = await postForm(
      p.tokenUrl,
      { grant_type: 'authorization_code', code: 'c1' },
      { 'x-ibm-client-ID': 'client-id', 'X-IBM-CLIENT-SECRET': 'client-secret' },
    );
    const body = (await ok.json()) as { group_header: { http_code: number }; response: TokenBody };
    expect(body.group_header.http_code).toBe(200);
    expect(body.response).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(body.response.access_token).toMatch(/^v3-at-/);
    expect((await fetch(`${p.apiBaseUrl}/accounts/1`, bearer(body.response.access_token))).status).toBe(200);

    p.expireAccessTokens();
    const expired = await fetch(`${p.apiBaseUrl}/accounts/1`, bearer(body.response.access_token));
    expect(expired.status).toBe(401);
    expect(await expired.json()).toMatchObject({
      group_header: { http_code: 401 },
      error: { failures: [{ code: 'error.token.expired' }] },
    });
  });

  it('takes a JSON body, wants a TPP bearer on the decoupled endpoint, and kills the session on reuse', async () => {
    const p = await start({ kind: 'v3' });
    const decoupled = `${p.origin}/v3/authorize-decoupled/token`;
    const post = (url: string, rt: string, extra: Record<string, string> = {}): Promise<Response> =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...V3_CLIENT, ...extra },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rt }),
      });
    const seed = p.issueRefreshToken();
    expect((await post(decoupled, seed)).status).toBe(401);
    const first = await tokenBody(await post(decoupled, seed, { authorization: 'Bearer tpp' }));
    expect(first).not.toHaveProperty('group_header');

    const reuse = await post(p.tokenUrl, seed);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({
      group_header: { http_code: 400 },
      error: { failures: [{ code: 'error.token.invalid', description: 'Oauth code expired' }] },
    });
    expect((await post(p.tokenUrl, first.refresh_token)).status).toBe(400);
    expect(p.counters).toMatchObject({ tokenCalls: 4, refreshGrants: 1, reuseAttempts: 1, invalidGrants: 2 });
  });
});

describe('fake provider: knobs', () => {
  it.each([
    ['number', (v: unknown) => v === 600],
    ['string', (v: unknown) => v === '600'],
    ['epoch-seconds', (v: unknown) => typeof v === 'number' && Math.abs(v - (Date.now() / 1000 + 600)) < 5],
    ['epoch-ms', (v: unknown) => typeof v === 'number' && Math.abs(v - (Date.now() + 600_000)) < 5000],
  ] as const)('writes expires_in as %s', async (expiresInAs, check) => {
    const p = await start({ kind: 'apiax', accessTokenLifetimeSeconds: 600, expiresInAs });
    const body = await tokenBody(
      await postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'refresh_token', refresh_token: p.issueRefreshToken() }),
    );
    expect(check(body.expires_in), `expires_in=${JSON.stringify(body.expires_in)}`).toBe(true);
  });

  it('fails the next token calls as told without spending the refresh token', async () => {
    const p = await start({ kind: 'collaborate' });
    const fields = { ...COLLAB_CLIENT, grant_type: 'refresh_token', refresh_token: p.issueRefreshToken() };
    p.failNextTokenCalls(2, 503);
    const a = await postForm(p.tokenUrl, fields);
    expect(a.status).toBe(503);
    expect(await a.text()).toBe('Service Unavailable');
    p.failNextTokenCalls(1, 500, '{"oops":true}');
    const b = await postForm(p.tokenUrl, fields);
    expect(b.status).toBe(500);
    expect(b.headers.get('content-type')).toBe('application/json');
    await tokenBody(await postForm(p.tokenUrl, fields));
    expect(p.counters).toMatchObject({ tokenCalls: 3, refreshGrants: 1, invalidGrants: 0 });
  });

  it('forces API rejections and hands valid requests to a custom handler', async () => {
    const p = await start({ kind: 'apiax', accessTokenLifetimeSeconds: 60 });
    const { access_token: token } = await tokenBody(
      await postForm(p.tokenUrl, { client_id: 'integration-api', grant_type: 'refresh_token', refresh_token: p.issueRefreshToken() }),
    );
    const url = `${p.apiBaseUrl}/stream?x=1`;
    p.setApiBehaviour('reject-once');
    expect((await fetch(url, bearer(token))).status).toBe(401);
    p.setApiHandler((req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end(`got ${req.body.toString()}`);
    });
    const custom = await fetch(url, { method: 'POST', body: 'hello', headers: { authorization: `Bearer ${token}` } });
    expect(custom.status).toBe(201);
    expect(await custom.text()).toBe('got hello');
    p.setApiBehaviour('always-reject');
    expect((await fetch(url, bearer(token))).status).toBe(401);
    expect((await fetch(url, bearer(token))).status).toBe(401);
    expect(p.counters).toMatchObject({ apiCalls: 4, apiRejections: 3 });
    expect(p.apiRequests[1]).toMatchObject({ method: 'POST', url: '/api/stream?x=1' });
    expect(p.issuedTokens).toContain(token);
  });

  it('closes at once even while a token answer is being delayed', async () => {
    const p = await startFakeProvider({ kind: 'apiax', tokenDelayMs: 10_000 });
    const pending = postForm(p.tokenUrl, {
      client_id: 'integration-api',
      grant_type: 'refresh_token',
      refresh_token: p.issueRefreshToken(),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await p.close();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(p.counters.tokenCalls).toBe(1);
  });

  it('rejects unknown options so a typo cannot silently test the defaults', async () => {
    const options = { kind: 'apiax', acessTokenLifetimeSeconds: 5 } as FakeProviderOptions;
    await expect(startFakeProvider(options)).rejects.toThrow(/unknown option "acessTokenLifetimeSeconds"/);
  });
});
