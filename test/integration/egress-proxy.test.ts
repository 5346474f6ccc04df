/**
 * Egress proxy (issue 11): behind a corporate forward proxy the sidecar reaches its targets and token
 * endpoints through CONNECT tunnels, chosen from HTTPS_PROXY/NO_PROXY (as curl reads them) or from an
 * upstream's `proxy:` setting, with Basic proxy credentials, and says which proxy and which setting when the
 * proxy is down or refuses. No password or Proxy-Authorization value reaches a log line or an answer.
 * A real forward proxy in a child process (test/helpers/forward-proxy.ts) that counts the tunnels it opens,
 * real https servers with a private CA, the app in-process, and once the built proxy as a process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { refusingPort } from '../helpers/ports.js';
import { startProxyProcess, writeProxyConfig } from '../helpers/proxy-process.js';
import { configYaml, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import { startTlsUpstream, type TlsUpstream } from '../helpers/tls-upstream.js';
import { makeTestPki, type TestCa, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let ca: TestCa;

beforeAll(() => {
  pki = makeTestPki();
  ca = pki.newCa('egress-proxy-ca');
  return pki.remove;
});

/** The proxy variables all unset (empty counts as unset), whatever the machine running the tests has. */
const NO_PROXY_VARIABLES = { HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '', http_proxy: '', NO_PROXY: '', no_proxy: '' };

type TlsTarget = TlsUpstream & { readonly bearers: (string | undefined)[] };

/** An https target on 127.0.0.1 (certificate from the test CA) that answers 200 and records the bearer. */
async function startTlsTarget(): Promise<TlsTarget> {
  const upstream = await startTlsUpstream(ca.issueServer());
  return {
    ...upstream,
    get bearers() {
      return upstream.requests.map((request) => request.authorization);
    },
  };
}

async function startTokenEndpoint(scheme: 'https' | 'http'): Promise<FakeProvider & { readonly authority: string }> {
  const serving = ca.issueServer();
  const provider = await startFakeProvider({
    kind: 'apiax',
    ...(scheme === 'https' && { tls: { cert: serving.certPem, key: serving.keyPem } }),
  });
  onTestFinished(() => provider.close());
  return Object.assign(provider, { authority: new URL(provider.origin).host });
}

interface UpstreamYaml {
  readonly target: TlsTarget;
  readonly provider: FakeProvider;
  /** The upstream's `proxy:` (a string or an object), written as YAML flow. */
  readonly proxy?: unknown;
  readonly authProxy?: unknown;
}

/** One upstream `api` (route /api) trusting the test CA for target and token endpoint. */
function apiYaml({ target, provider, proxy, authProxy }: UpstreamYaml): string {
  const lines = ['api:', `  target: ${target.origin}`, `  tls: ${JSON.stringify({ caFile: ca.certFile })}`];
  if (proxy !== undefined) lines.push(`  proxy: ${JSON.stringify(proxy)}`);
  lines.push('  auth:', '    preset: apiax', `    tokenUrl: ${provider.tokenUrl}`, `    refreshToken: ${provider.issueRefreshToken()}`);
  if (authProxy !== undefined) lines.push(`    proxy: ${JSON.stringify(authProxy)}`);
  return lines.join('\n');
}

function start(upstream: UpstreamYaml, env: Record<string, string> = {}): Promise<RunningProxy> {
  return startProxy(configYaml(apiYaml(upstream)), { env: { ...NO_PROXY_VARIABLES, ...env } });
}

interface ProxyAnswer {
  readonly status: number;
  readonly code: string | undefined;
  readonly message: string;
  readonly body: string;
}

async function get(proxy: RunningProxy): Promise<ProxyAnswer> {
  const response = await fetch(`${proxy.url}/api/hello`, { signal: AbortSignal.timeout(15_000) });
  const body = await response.text();
  let parsed: { error?: { code?: string; message?: string } } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not an error body
  }
  return { status: response.status, code: parsed.error?.code, message: parsed.error?.message ?? '', body };
}

function expectIssuedBearer(target: TlsTarget, provider: FakeProvider): void {
  const bearer = target.bearers.at(-1);
  expect(bearer).toMatch(/^Bearer /);
  expect(provider.issuedTokens).toContain(bearer?.slice('Bearer '.length));
}

/** A secret file of its own in a temp dir removed after the test. */
function secretFile(content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'egress-proxy-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'password');
  writeFileSync(file, `${content}\n`, { mode: 0o600 });
  return file;
}

/** What a leak of these credentials would look like: the password, and the Basic value in either form. */
function secretForms(username: string, password: string): string[] {
  const basic = Buffer.from(`${username}:${password}`).toString('base64');
  return [password, basic, encodeURIComponent(password)];
}

function expectNoneOf(text: string, secrets: readonly string[]): void {
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('HTTPS_PROXY from the environment', () => {
  it('the target and the token endpoint are reached through CONNECT tunnels', async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({ target, provider }, { HTTPS_PROXY: forward.url });

    expect((await get(proxy)).status).toBe(200);
    expectIssuedBearer(target, provider);
    expect(await forward.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
    // A second request rides the kept-alive tunnel.
    expect((await get(proxy)).status).toBe(200);
    expect(await forward.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
    expect(await forward.plainRequests()).toBe(0);
  });

  it('the lowercase https_proxy wins over HTTPS_PROXY', async () => {
    const used = await startForwardProxy();
    const ignored = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({ target, provider }, { https_proxy: used.url, HTTPS_PROXY: ignored.url });

    expect((await get(proxy)).status).toBe(200);
    expect(await used.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
    expect(await ignored.tunnels()).toEqual({});
  });

  it('NO_PROXY=127.0.0.1: everything direct, no tunnel', async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({ target, provider }, { HTTPS_PROXY: forward.url, NO_PROXY: '127.0.0.1' });

    expect((await get(proxy)).status).toBe(200);
    expectIssuedBearer(target, provider);
    expect(await forward.tunnels()).toEqual({});
  });

  it("NO_PROXY with the target's host:port: the target direct, the token endpoint (another port) still tunnelled", async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({ target, provider }, { HTTPS_PROXY: forward.url, NO_PROXY: `localhost, ${target.authority}` });

    expect((await get(proxy)).status).toBe(200);
    expect(await forward.tunnels()).toEqual({ [provider.authority]: 1 });
  });

  it('credentials in the HTTPS_PROXY URL are sent to a proxy that wants them, and never logged', async () => {
    const password = 'p@ss word/5e1c';
    const forward = await startForwardProxy({ username: 'egress-user', password });
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const withCredentials = `http://egress-user:${encodeURIComponent(password)}@127.0.0.1:${forward.port}`;
    const proxy = await start({ target, provider }, { HTTPS_PROXY: withCredentials });

    const answer = await get(proxy);
    expect(answer.status).toBe(200);
    expect(await forward.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
    expect(await forward.authRefusals()).toBe(0);
    expectNoneOf(proxy.rawLogs(), secretForms('egress-user', password));
  });

  it('without credentials against a proxy that wants them: 502 EGRESS_PROXY_FAILED saying so and naming HTTPS_PROXY', async () => {
    const forward = await startForwardProxy({ username: 'egress-user', password: 'unused-secret-8a2f' });
    const target = await startTlsTarget();
    // Plain http: HTTPS_PROXY does not apply to it, so the token is fetched and the target's tunnel is what fails.
    const provider = await startTokenEndpoint('http');
    const proxy = await start({ target, provider }, { HTTPS_PROXY: forward.url });

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'EGRESS_PROXY_FAILED' });
    expect(answer.message).toContain('upstream api');
    expect(answer.message).toContain(forward.url);
    expect(answer.message).toContain('wants credentials');
    expect(answer.message).toContain('HTTPS_PROXY');
    expect(await forward.authRefusals()).toBeGreaterThanOrEqual(1);
    expect(await forward.tunnels()).toEqual({});
    expect(target.bearers).toEqual([]);
    expect(provider.counters.tokenCalls).toBe(1);
  });

  it('a proxy that is down: 502 EGRESS_PROXY_FAILED naming the proxy and the variable it came from', async () => {
    const down = await refusingPort();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('http');
    const proxyUrl = `http://127.0.0.1:${down.port}`;
    const proxy = await start({ target, provider }, { https_proxy: proxyUrl });

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'EGRESS_PROXY_FAILED' });
    expect(answer.message).toContain('upstream api');
    expect(answer.message).toContain(`egress proxy ${proxyUrl} (from https_proxy)`);
    expect(answer.message).toContain('ECONNREFUSED');
    expect(target.bearers).toEqual([]);
    const logged = proxy.logs.find((line) => line.code === 'EGRESS_PROXY_FAILED');
    expect(logged).toMatchObject({ upstream: 'api' });
  });

  it('a token endpoint behind a proxy that is down: 503 naming the token endpoint and the proxy, and its grant is not taken as spent', async () => {
    const down = await refusingPort();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxyUrl = `http://127.0.0.1:${down.port}`;
    const proxy = await start({ target, provider }, { HTTPS_PROXY: proxyUrl });

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 503, code: 'TOKEN_ENDPOINT_UNAVAILABLE' });
    expect(answer.message).toContain('the token endpoint of api');
    expect(answer.message).toContain(`egress proxy ${proxyUrl} (from HTTPS_PROXY)`);
    expect(provider.counters.tokenCalls).toBe(0);
  });
});

describe('proxy: in the config', () => {
  it('`proxy: direct` ignores HTTPS_PROXY (for the token endpoint too)', async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({ target, provider, proxy: 'direct' }, { HTTPS_PROXY: forward.url });

    expect((await get(proxy)).status).toBe(200);
    expectIssuedBearer(target, provider);
    expect(await forward.tunnels()).toEqual({});
  });

  it('an object with username and passwordFile against a proxy that wants credentials: both peers tunnelled, no secret logged', async () => {
    const password = 'corp-proxy-secret-3d7b';
    const forward = await startForwardProxy({ username: 'svc-sidecar', password });
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const proxy = await start({
      target,
      provider,
      proxy: { url: forward.url, username: 'svc-sidecar', passwordFile: secretFile(password) },
    });

    const answer = await get(proxy);
    expect(answer.status).toBe(200);
    expectIssuedBearer(target, provider);
    expect(await forward.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
    expect(await forward.authRefusals()).toBe(0);
    expectNoneOf(proxy.rawLogs(), secretForms('svc-sidecar', password));
  });

  it('a wrong password: 502 EGRESS_PROXY_FAILED saying the proxy refused the credentials; no secret in the answer or the logs', async () => {
    const rightPassword = 'right-secret-0c9e';
    const wrongPassword = 'wrong-secret-71fa';
    const forward = await startForwardProxy({ username: 'svc-sidecar', password: rightPassword });
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const passwordFile = secretFile(wrongPassword);
    const proxy = await start({
      target,
      provider,
      proxy: { url: forward.url, username: 'svc-sidecar', passwordFile },
      authProxy: 'direct',
    });

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'EGRESS_PROXY_FAILED' });
    expect(answer.message).toContain('upstream api');
    expect(answer.message).toContain(`egress proxy ${forward.url} (from upstreams.api.proxy)`);
    expect(answer.message).toContain('refused the proxy credentials');
    expect(await forward.authRefusals()).toBeGreaterThanOrEqual(1);
    expect(await forward.lastProxyAuthorizationSeen()).toBe(true);
    expect(await forward.tunnels()).toEqual({});
    expect(target.bearers).toEqual([]);
    // The token endpoint went direct (auth.proxy), so this is the target's tunnel failing, not the token.
    expect(provider.counters.tokenCalls).toBe(1);
    const secrets = [...secretForms('svc-sidecar', wrongPassword), ...secretForms('svc-sidecar', rightPassword)];
    expectNoneOf(answer.body, secrets);
    expectNoneOf(proxy.rawLogs(), secrets);
    expect(proxy.rawLogs()).toContain('EGRESS_PROXY_FAILED');
  });

  it('auth.proxy sends the token endpoint through a proxy while the target goes direct', async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const down = await refusingPort();
    // The environment's proxy is down: only the configured settings can make this work.
    const proxy = await start(
      { target, provider, proxy: 'direct', authProxy: forward.url },
      { HTTPS_PROXY: `http://127.0.0.1:${down.port}` },
    );

    expect((await get(proxy)).status).toBe(200);
    expect(await forward.tunnels()).toEqual({ [provider.authority]: 1 });
  });
});

describe('the built proxy as a process', () => {
  it('HTTPS_PROXY in its environment sends the target and the token endpoint through the tunnel', async () => {
    const forward = await startForwardProxy();
    const target = await startTlsTarget();
    const provider = await startTokenEndpoint('https');
    const configPath = writeProxyConfig(configYaml(apiYaml({ target, provider })));
    const sidecar = await startProxyProcess(configPath, 'egress', { HTTPS_PROXY: forward.url });

    const response = await fetch(`${sidecar.url}/api/hello`, { signal: AbortSignal.timeout(15_000) });
    expect(response.status).toBe(200);
    expectIssuedBearer(target, provider);
    expect(await forward.tunnels()).toEqual({ [target.authority]: 1, [provider.authority]: 1 });
  });
});
