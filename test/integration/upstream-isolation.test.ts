/**
 * Issue 9 item 7: every upstream shares the proxy's one origin from the app's side, so an upstream's
 * cookies and redirects must stay within its own route. Real proxy, real upstreams, real clients; the
 * redirect tests follow with fetch as an app would.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { startPlainUpstream, startRoutedProxy, type UpstreamHandler } from '../helpers/plain-upstream.js';
import { send } from '../helpers/raw-http.js';
import { configYaml, startProxy } from '../helpers/start-proxy.js';

/** An upstream handler that answers every request with `status` and these headers. */
function answering(status: number, headers: (string | string[])[] | Record<string, string | string[]>): UpstreamHandler {
  return (req, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, headers as Record<string, string | string[]>);
      res.end();
    });
  };
}

/** Routes /one → upstream one at /base and /two → upstream two at its root, both with real tokens. */
async function startTwoRoutes(one: UpstreamHandler, two: UpstreamHandler) {
  const provider = await startFakeProvider({ kind: 'apiax' });
  onTestFinished(() => provider.close());
  const upstreamOne = await startPlainUpstream(one);
  const upstreamTwo = await startPlainUpstream(two);
  const auth = (refreshToken: string) =>
    `  auth:\n    preset: apiax\n    tokenUrl: ${provider.tokenUrl}\n    refreshToken: ${refreshToken}`;
  const proxy = await startProxy(
    configYaml(
      `one:\n  target: ${upstreamOne.origin}/base\n${auth(provider.issueRefreshToken())}\ntwo:\n  target: ${upstreamTwo.origin}\n${auth(provider.issueRefreshToken())}`,
    ),
  );
  return { proxy, upstreamOne, upstreamTwo };
}

describe('upstream isolation: cookies', () => {
  it("confines an upstream's cookies to its route (Path under /up, Domain dropped), other attributes and values intact", async () => {
    const { routeUrl } = await startRoutedProxy({
      handler: answering(200, [
        'Set-Cookie',
        'a=1; Path=/; Domain=127.0.0.1; HttpOnly',
        'Set-Cookie',
        'b=x%3Dy; Path=/base/docs; SameSite=Lax',
        'Set-Cookie',
        'c=3',
        'Content-Length',
        '0',
      ]),
    });
    const res = await send(`${routeUrl}/docs/1`);
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toEqual(['a=1; HttpOnly; Path=/up/', 'b=x%3Dy; SameSite=Lax; Path=/up/docs', 'c=3; Path=/up/']);
  });

  it('gives two upstreams that both set Path=/ cookies confined to their own routes', async () => {
    const { proxy } = await startTwoRoutes(
      answering(200, { 'set-cookie': 'sid=one; Path=/' }),
      answering(200, { 'set-cookie': 'sid=two; Path=/' }),
    );
    expect((await send(`${proxy.url}/one/x`)).headers['set-cookie']).toEqual(['sid=one; Path=/one/']);
    expect((await send(`${proxy.url}/two/x`)).headers['set-cookie']).toEqual(['sid=two; Path=/two/']);
  });

  it('cookies: strip removes them, cookies: pass forwards them untouched', async () => {
    const headers = { 'set-cookie': ['a=1; Path=/', 'b=2; Domain=127.0.0.1'] };
    const stripped = await startRoutedProxy({ handler: answering(200, headers), extra: 'cookies: strip' });
    expect((await send(`${stripped.routeUrl}/x`)).headers['set-cookie']).toBeUndefined();
    const passed = await startRoutedProxy({ handler: answering(200, headers), extra: 'cookies: pass' });
    expect((await send(`${passed.routeUrl}/x`)).headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Domain=127.0.0.1']);
  });

  it('scopes the cookies of a held rejection that is sent as it came (no newer token to replay with)', async () => {
    const { routeUrl, provider, upstream } = await startRoutedProxy({
      handler: answering(401, { 'set-cookie': 'a=1; Path=/', location: '/base/login' }),
    });
    expect((await send(`${routeUrl}/warm`)).status).toBe(401); // first token taken and rejected; replayed once
    provider.failNextTokenCalls(10, 400, JSON.stringify({ error: 'invalid_grant' }), { 'content-type': 'application/json' });
    const res = await send(`${routeUrl}/x`);
    expect(res.status).toBe(401);
    expect(upstream.requests.filter((request) => request.url === '/base/x')).toHaveLength(1); // not replayed: the held answer itself
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/up/']);
    expect(res.headers.location).toBe('/up/login');
  });
});

describe('upstream isolation: redirects', () => {
  it('maps Location and Content-Location at the upstream under its route, leaves other origins and relative ones', async () => {
    const { routeUrl, upstream } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        const location = {
          '/base/root-relative': '/base/next?x=1#top',
          '/base/absolute': `${upstream.origin}/base/n`,
          '/base/outside': '/elsewhere?y=2',
          '/base/other-origin': 'https://idp.example/authorize',
          '/base/relative': 'next',
        }[req.url ?? ''];
        res.writeHead(302, { location: location ?? '', 'content-location': '/base/doc/1', 'content-length': '0' }).end();
      },
    });
    const locationOf = async (path: string) => (await send(`${routeUrl}${path}`)).headers.location;
    expect(await locationOf('/root-relative')).toBe('/up/next?x=1#top');
    expect(await locationOf('/absolute')).toBe('/up/n');
    expect(await locationOf('/outside')).toBe(`${upstream.origin}/elsewhere?y=2`);
    expect(await locationOf('/other-origin')).toBe('https://idp.example/authorize');
    expect(await locationOf('/relative')).toBe('next');
    expect((await send(`${routeUrl}/root-relative`)).headers['content-location']).toBe('/up/doc/1');
  });

  it('a client following a root-relative redirect stays on the same upstream, through the proxy', async () => {
    const { routeUrl, upstream } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        if (req.url === '/base/start') res.writeHead(302, { location: '/base/next?x=1', 'content-length': '0' }).end();
        else res.writeHead(200, { 'content-length': '2' }).end('ok');
      },
    });
    const res = await fetch(`${routeUrl}/start`, { redirect: 'follow' });
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${routeUrl}/next?x=1`);
    expect(upstream.requests.map((request) => request.url)).toEqual(['/base/start', '/base/next?x=1']);
    expect(upstream.requests[1]?.headers.authorization).toMatch(/^Bearer /);
  });

  it("a redirect outside the upstream's base path never leads a following client into another route with its token", async () => {
    const { proxy, upstreamOne, upstreamTwo } = await startTwoRoutes(
      (req, res) => {
        req.resume();
        if (req.url === '/base/start') res.writeHead(302, { location: '/two/secret', 'content-length': '0' }).end();
        else res.writeHead(404, { 'content-length': '0' }).end();
      },
      answering(200, { 'content-length': '0' }),
    );
    const res = await fetch(`${proxy.url}/one/start`, { redirect: 'follow' });
    // The client went to upstream one's own origin, as the upstream meant, without the proxy or a token.
    expect(res.url).toBe(`${upstreamOne.origin}/two/secret`);
    expect(upstreamTwo.requests).toEqual([]);
    const followed = upstreamOne.requests.at(-1);
    expect(followed?.url).toBe('/two/secret');
    expect(followed?.headers.authorization).toBeUndefined();
  });
});
