/**
 * Config reload in one process (app.reload): upstreams added, removed and changed while requests are in
 * flight, token managers kept when auth is unchanged, a reload that cannot be built refused whole. The
 * triggers (SIGHUP, a ConfigMap-style symlink swap) are tested on a real process in config-reload-process.test.ts.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.js';
import { startPlainUpstream, type PlainUpstream } from '../helpers/plain-upstream.js';
import { send } from '../helpers/raw-http.js';
import { startProxy } from '../helpers/start-proxy.js';

const TOP = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\n';

interface Setup {
  readonly provider: FakeProvider;
  readonly upstreamA: PlainUpstream;
  readonly upstreamB: PlainUpstream;
  /** The upstreams block for the given routes. `seed` is fixed per name, so the auth sections stay equal. */
  yaml(routes: Record<string, { target: string; extra?: string; authExtra?: string }>): string;
}

async function setup(): Promise<Setup> {
  const provider = await startFakeProvider({ kind: 'apiax' });
  onTestFinished(() => provider.close());
  const upstreamA = await startPlainUpstream();
  const upstreamB = await startPlainUpstream();
  const seeds = new Map<string, string>();
  const seedFor = (name: string) => seeds.get(name) ?? seeds.set(name, provider.issueRefreshToken()).get(name)!;
  return {
    provider,
    upstreamA,
    upstreamB,
    yaml: (routes) =>
      TOP +
      'upstreams:\n' +
      Object.entries(routes)
        .map(
          ([name, route]) =>
            `  ${name}:\n    target: ${route.target}\n${route.extra ? `    ${route.extra}\n` : ''}` +
            `    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: ${seedFor(name)}${route.authExtra ?? ''} }\n`,
        )
        .join(''),
  };
}

describe('config reload (in process)', () => {
  it('adds and removes upstreams: new requests see the new routes at once', async () => {
    const s = await setup();
    const proxy = await startProxy(s.yaml({ one: { target: s.upstreamA.origin } }));
    expect((await send(`${proxy.url}/one/x`)).status).toBe(200);
    expect((await send(`${proxy.url}/two/x`)).status).toBe(404);

    const outcome = await proxy.app.reload(parseConfig(s.yaml({ two: { target: s.upstreamB.origin } })));
    expect(outcome).toMatchObject({ added: ['two'], removed: ['one'], changed: [], unchanged: [], restartNeededFor: [] });
    expect((await send(`${proxy.url}/one/x`)).status).toBe(404);
    expect((await send(`${proxy.url}/two/x`)).status).toBe(200);
    expect(s.upstreamB.requests.map((request) => request.url)).toEqual(['/x']);
    expect(proxy.app.statuses().map((status) => status.upstream)).toEqual(['two']);
  });

  it('keeps the token manager and its token when only routing or limits change; a new auth section gets a new one', async () => {
    const s = await setup();
    const proxy = await startProxy(s.yaml({ one: { target: s.upstreamA.origin } }));
    expect((await send(`${proxy.url}/one/x`)).status).toBe(200);
    const callsAfterFirst = s.provider.counters.tokenCalls;
    const bearer = s.upstreamA.requests[0]!.headers.authorization;

    // A new target and a new limit: the route is rebuilt, the token stays.
    const moved = await proxy.app.reload(parseConfig(s.yaml({ one: { target: s.upstreamB.origin, extra: 'maxConnections: 4' } })));
    expect(moved).toMatchObject({ changedTokensKept: ['one'], changed: [] });
    expect((await send(`${proxy.url}/one/y`)).status).toBe(200);
    expect(s.upstreamB.requests[0]!.headers.authorization).toBe(bearer);
    expect(s.provider.counters.tokenCalls).toBe(callsAfterFirst);

    // The same config again: nothing is rebuilt.
    const same = await proxy.app.reload(parseConfig(s.yaml({ one: { target: s.upstreamB.origin, extra: 'maxConnections: 4' } })));
    expect(same).toMatchObject({ unchanged: ['one'], changedTokensKept: [], changed: [] });

    // A changed auth section (a scope) gets a new token manager.
    const reauth = await proxy.app.reload(
      parseConfig(s.yaml({ one: { target: s.upstreamB.origin, extra: 'maxConnections: 4', authExtra: ', scope: api' } })),
    );
    expect(reauth).toMatchObject({ changed: ['one'], changedTokensKept: [] });
    expect((await send(`${proxy.url}/one/z`)).status).toBe(200);
  });

  it('lets a request in flight finish on the route it started on, while the reload removes that route', async () => {
    const s = await setup();
    let release: () => void = () => undefined;
    const slow = await startPlainUpstream((req, res) => {
      req.resume();
      release = () => res.end('finished after the reload');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started ');
    });
    const proxy = await startProxy(s.yaml({ slow: { target: slow.origin } }));
    const inFlight = send(`${proxy.url}/slow/long`);
    while (slow.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    await proxy.app.reload(parseConfig(s.yaml({ other: { target: s.upstreamA.origin } })));
    expect((await send(`${proxy.url}/slow/again`)).status).toBe(404);
    release();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('started finished after the reload');
  });

  it('refuses a reload whose TLS files do not load, whole: the running routes keep serving', async () => {
    const s = await setup();
    const proxy = await startProxy(s.yaml({ one: { target: s.upstreamA.origin } }));
    const broken = parseConfig(
      s.yaml({
        one: { target: s.upstreamA.origin },
        two: { target: 'https://127.0.0.1:9', extra: 'tls: { caFile: /nonexistent/ca.pem }' },
      }),
    );
    await expect(proxy.app.reload(broken)).rejects.toBeInstanceOf(ConfigError);
    expect((await send(`${proxy.url}/one/x`)).status).toBe(200);
    expect((await send(`${proxy.url}/two/x`)).status).toBe(404);
    const status = JSON.parse((await send(`${proxy.adminUrl}/status`)).body.toString()) as {
      config: { reloads: { applied: number; refused: number } };
    };
    expect(status.config.reloads).toMatchObject({ applied: 0, refused: 1 });
  });

  it('reports listen, admin and store changes as needing a restart and keeps the running ones', async () => {
    const s = await setup();
    const proxy = await startProxy(s.yaml({ one: { target: s.upstreamA.origin } }));
    const moved = s.yaml({ one: { target: s.upstreamA.origin } }).replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1');
    const outcome = await proxy.app.reload(parseConfig(moved));
    expect(outcome.restartNeededFor).toEqual(['listen']);
    expect((await send(`${proxy.url}/one/x`)).status).toBe(200);
    const status = JSON.parse((await send(`${proxy.adminUrl}/status`)).body.toString()) as {
      config: { sha256: string; restartNeededFor: string[]; reloads: { applied: number } };
    };
    expect(status.config).toMatchObject({ restartNeededFor: ['listen'], reloads: { applied: 1 } });
    expect(status.config.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
