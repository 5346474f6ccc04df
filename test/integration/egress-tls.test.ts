/**
 * Egress TLS (issue 11): the sidecar reaches upstream targets and token endpoints served with a private CA,
 * presents a client certificate (mutual TLS, encrypted keys included), checks another name than the URL's
 * host (servername), keeps to TLS 1.2 or better, and picks up a rotated client certificate without a
 * restart. Every failure names the peer and the setting that fixes it. Real TLS servers on 127.0.0.1 with
 * throwaway CAs (test/helpers/test-pki.ts), the real app in-process (startProxy).
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.js';
import { configYaml, eventually, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import { makeTestPki, type Issued, type TestCa, type TestPki } from '../helpers/test-pki.js';
import { startTlsUpstream, type SeenTlsRequest, type TlsUpstream } from '../helpers/tls-upstream.js';

let pki: TestPki;
let caA: TestCa;
let caB: TestCa;
/** Signs client certificates only. */
let clientCa: TestCa;

beforeAll(() => {
  pki = makeTestPki();
  caA = pki.newCa('server-ca-a');
  caB = pki.newCa('server-ca-b');
  clientCa = pki.newCa('client-ca');
  return pki.remove;
});

/** A plain-HTTP Apiax token endpoint (public client), so the target's TLS is the only TLS in play. */
async function startTokenEndpoint(tls?: { cert: Issued; clientCa?: TestCa }): Promise<FakeProvider> {
  const provider = await startFakeProvider({
    kind: 'apiax',
    ...(tls && {
      tls: { cert: tls.cert.certPem, key: tls.cert.keyPem, ...(tls.clientCa && { ca: tls.clientCa.certPem, requestCert: true }) },
    }),
  });
  onTestFinished(() => provider.close());
  return provider;
}

interface UpstreamYaml {
  readonly target: string;
  readonly provider: FakeProvider;
  readonly tls?: Record<string, unknown>;
  readonly authTls?: Record<string, unknown>;
}

/** One upstream `api` (route /api); tls sections written as YAML flow mappings. */
function apiConfig({ target, provider, tls, authTls }: UpstreamYaml): string {
  const lines = ['api:', `  target: ${target}`];
  if (tls) lines.push(`  tls: ${JSON.stringify(tls)}`);
  lines.push('  auth:', '    preset: apiax', `    tokenUrl: ${provider.tokenUrl}`, `    refreshToken: ${provider.issueRefreshToken()}`);
  if (authTls) lines.push(`    tls: ${JSON.stringify(authTls)}`);
  return configYaml(lines.join('\n'));
}

interface ProxyAnswer {
  readonly status: number;
  readonly code: string | undefined;
  readonly message: string;
  readonly body: string;
}

async function get(proxy: RunningProxy, path = '/api/hello'): Promise<ProxyAnswer> {
  const response = await fetch(`${proxy.url}${path}`, { signal: AbortSignal.timeout(15_000) });
  const body = await response.text();
  let code: string | undefined;
  let message = '';
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    code = parsed.error?.code;
    message = parsed.error?.message ?? '';
  } catch {
    // not an error body
  }
  return { status: response.status, code, message, body };
}

/** The bearer the target received is one the token endpoint issued. */
function expectIssuedBearer(seen: SeenTlsRequest | undefined, provider: FakeProvider): void {
  expect(seen?.authorization).toMatch(/^Bearer /);
  expect(provider.issuedTokens).toContain(seen?.authorization?.slice('Bearer '.length));
}

/** A file of its own in a temp dir removed after the test. */
function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'egress-tls-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('a target served with a private CA', () => {
  it('without tls.caFile: 502 UPSTREAM_TLS_FAILED naming upstreams.api.tls.caFile, and the log line names the upstream', async () => {
    const target = await startTlsUpstream(caA.issueServer());
    const provider = await startTokenEndpoint();
    const proxy = await startProxy(apiConfig({ target: target.origin, provider }));

    const answer = await get(proxy);
    expect(answer.status).toBe(502);
    expect(answer.code).toBe('UPSTREAM_TLS_FAILED');
    expect(answer.message).toContain('upstream api');
    expect(answer.message).toContain('upstreams.api.tls.caFile');
    expect(target.requests).toHaveLength(0);
    const logged = proxy.logs.find((line) => line.code === 'UPSTREAM_TLS_FAILED');
    expect(logged).toMatchObject({ upstream: 'api' });
    expect(String(logged?.msg)).toContain('upstreams.api.tls.caFile');
  });

  it('with tls.caFile: 200 and the bearer arrives', async () => {
    const target = await startTlsUpstream(caA.issueServer());
    const provider = await startTokenEndpoint();
    const proxy = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));

    const answer = await get(proxy);
    expect(answer.status).toBe(200);
    expect(target.requests).toHaveLength(1);
    expectIssuedBearer(target.requests[0], provider);
  });

  it("a CA bundle that does not sign the target's certificate is refused the same way", async () => {
    const target = await startTlsUpstream(caA.issueServer());
    const provider = await startTokenEndpoint();
    const proxy = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caB.certFile } }));

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(answer.message).toContain('upstreams.api.tls.caFile');
  });
});

describe('a token endpoint served with a private CA', () => {
  it("the upstream's tls.caFile applies to the token endpoint too", async () => {
    // Target and token endpoint are one https origin (the fake provider's API checks the bearer itself).
    const provider = await startTokenEndpoint({ cert: caA.issueServer() });
    expect(provider.tokenUrl).toMatch(/^https:\/\/127\.0\.0\.1:/);
    const proxy = await startProxy(apiConfig({ target: provider.apiBaseUrl, provider, tls: { caFile: caA.certFile } }));

    const answer = await get(proxy, '/api/3/sites');
    expect(answer.status).toBe(200);
    expect(provider.counters.tokenCalls).toBe(1);
    expect(provider.counters.apiCalls).toBe(1);
    expect(provider.counters.apiRejections).toBe(0);
  });

  it('without a CA for it: 503 TOKEN_ENDPOINT_UNAVAILABLE naming the token endpoint and its caFile setting', async () => {
    const provider = await startTokenEndpoint({ cert: caB.issueServer() });
    const target = await startTlsUpstream(caA.issueServer());
    const proxy = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 503, code: 'TOKEN_ENDPOINT_UNAVAILABLE' });
    expect(answer.message).toContain('the token endpoint of api');
    // The upstream's tls section is the one in force for the token endpoint, so it is the one named.
    expect(answer.message).toContain('upstreams.api.tls.caFile');
    expect(provider.counters.tokenCalls).toBe(0);
    expect(target.requests).toHaveLength(0);
  });

  it('auth.tls overrides the upstream tls for the token endpoint (token endpoint signed by CA B, target by CA A)', async () => {
    const provider = await startTokenEndpoint({ cert: caB.issueServer() });
    const target = await startTlsUpstream(caA.issueServer());
    const proxy = await startProxy(
      apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile }, authTls: { caFile: caB.certFile } }),
    );

    const answer = await get(proxy);
    expect(answer.status).toBe(200);
    expect(provider.counters.tokenCalls).toBe(1);
    expectIssuedBearer(target.requests[0], provider);
  });

  it('auth.tls does not reach the target: with only auth.tls.caFile the target is still untrusted', async () => {
    const provider = await startTokenEndpoint({ cert: caB.issueServer() });
    const target = await startTlsUpstream(caA.issueServer());
    const proxy = await startProxy(apiConfig({ target: target.origin, provider, authTls: { caFile: caB.certFile } }));

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(provider.counters.tokenCalls).toBe(1);
  });

  it('a token endpoint that requires a client certificate gets the one in auth.tls', async () => {
    const provider = await startTokenEndpoint({ cert: caA.issueServer(), clientCa });
    const target = await startTlsUpstream(caA.issueServer());
    const client = clientCa.issueClient('token-client');
    const proxy = await startProxy(
      apiConfig({
        target: target.origin,
        provider,
        tls: { caFile: caA.certFile },
        authTls: { caFile: caA.certFile, certFile: client.certFile, keyFile: client.keyFile },
      }),
    );

    expect((await get(proxy)).status).toBe(200);
    expect(provider.counters.tokenCalls).toBe(1);
  });
});

describe('mutual TLS', () => {
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`${maxVersion} server: without certFile a clear UPSTREAM_TLS_FAILED naming certFile and keyFile`, async () => {
      const target = await startTlsUpstream(caA.issueServer(), { clientCa, maxVersion });
      const provider = await startTokenEndpoint();
      const proxy = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));

      const answer = await get(proxy);
      expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
      expect(answer.message).toContain('upstream api');
      expect(answer.message).toContain('may require a client certificate');
      expect(answer.message).toContain('upstreams.api.tls.certFile');
      expect(answer.message).toContain('upstreams.api.tls.keyFile');
      expect(target.requests).toHaveLength(0);
    });

    it(`${maxVersion} server: with certFile and keyFile, 200 and the server saw the client certificate`, async () => {
      const target = await startTlsUpstream(caA.issueServer(), { clientCa, maxVersion });
      const provider = await startTokenEndpoint();
      const client = clientCa.issueClient('sidecar-client');
      const proxy = await startProxy(
        apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile, certFile: client.certFile, keyFile: client.keyFile } }),
      );

      expect((await get(proxy)).status).toBe(200);
      expect(target.requests[0]).toMatchObject({ clientCn: 'sidecar-client', clientSerial: client.serialHex });
      expectIssuedBearer(target.requests[0], provider);
    });
  }

  it('a client certificate from a CA the server does not accept is refused, naming certFile', async () => {
    const target = await startTlsUpstream(caA.issueServer(), { clientCa, maxVersion: 'TLSv1.2' });
    const provider = await startTokenEndpoint();
    const stranger = caB.issueClient('stranger');
    const proxy = await startProxy(
      apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile, certFile: stranger.certFile, keyFile: stranger.keyFile } }),
    );

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(answer.message).toContain('upstreams.api.tls.certFile');
  });

  it('an encrypted key with passphraseFile: 200, and the passphrase is in no log line', async () => {
    const passphrase = 'correct-horse-battery-staple-7f3a';
    const target = await startTlsUpstream(caA.issueServer(), { clientCa });
    const provider = await startTokenEndpoint();
    const client = clientCa.issueClient('encrypted-client', { passphrase });
    expect(client.keyPem).toContain('ENCRYPTED');
    const passphraseFile = tempFile('passphrase', `${passphrase}\n`);
    const proxy = await startProxy(
      apiConfig({
        target: target.origin,
        provider,
        tls: { caFile: caA.certFile, certFile: client.certFile, keyFile: client.keyFile, passphraseFile },
      }),
    );

    expect((await get(proxy)).status).toBe(200);
    expect(target.requests[0]).toMatchObject({ clientCn: 'encrypted-client', clientSerial: client.serialHex });
    expect(proxy.rawLogs()).not.toContain(passphrase);
  });

  it('a wrong passphrase stops start-up with a ConfigError naming keyFile (and not the passphrase)', async () => {
    const target = await startTlsUpstream(caA.issueServer(), { clientCa });
    const provider = await startTokenEndpoint();
    const client = clientCa.issueClient('encrypted-client', { passphrase: 'the-right-one-91c2' });
    const wrong = 'not-the-passphrase-55d0';
    const passphraseFile = tempFile('passphrase', wrong);

    const started = startProxy(
      apiConfig({
        target: target.origin,
        provider,
        tls: { caFile: caA.certFile, certFile: client.certFile, keyFile: client.keyFile, passphraseFile },
      }),
    );
    const error = await started.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('upstreams.api.tls');
    expect(problems).toContain('keyFile');
    expect(problems).toContain('passphrase');
    expect((error as ConfigError).message).not.toContain(wrong);
    expect(target.requests).toHaveLength(0);
  });

  it('an encrypted key without a passphrase stops start-up naming passphraseFile', async () => {
    const provider = await startTokenEndpoint();
    const client = clientCa.issueClient('encrypted-client', { passphrase: 'some-passphrase-0d1e' });

    const error = await startProxy(
      apiConfig({
        target: 'https://127.0.0.1:9',
        provider,
        tls: { caFile: caA.certFile, certFile: client.certFile, keyFile: client.keyFile },
      }),
    ).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/upstreams\.api\.tls: keyFile .*passphraseFile/);
  });
});

describe('servername', () => {
  it('a certificate only for api.internal, reached at 127.0.0.1: the message names servername; with servername: api.internal, 200', async () => {
    const target = await startTlsUpstream(caA.issueServer({ names: ['api.internal'] }));
    const provider = await startTokenEndpoint();

    const without = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));
    const refused = await get(without);
    expect(refused).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(refused.message).toContain('upstreams.api.tls.servername');
    expect(target.requests).toHaveLength(0);

    const named = await startProxy(
      apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile, servername: 'api.internal' } }),
    );
    expect((await get(named)).status).toBe(200);
    expectIssuedBearer(target.requests[0], provider);
  });
});

describe('minimum TLS version', () => {
  it('a server limited to TLS 1.1 is refused by default (TLS 1.2 minimum), the handshake failure named', async () => {
    // SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.1 otherwise.
    const target = await startTlsUpstream(caA.issueServer(), { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    const provider = await startTokenEndpoint();
    const proxy = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));

    const answer = await get(proxy);
    expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(answer.message).toContain('upstream api: the TLS handshake failed');
    expect(answer.message).toContain('no TLS version from TLSv1.2 up');
    expect(target.requests).toHaveLength(0);
  });

  it('minVersion: TLSv1.3 refuses a TLS 1.2-only server; the default accepts it', async () => {
    const target = await startTlsUpstream(caA.issueServer(), { maxVersion: 'TLSv1.2' });
    const provider = await startTokenEndpoint();

    const strict = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile, minVersion: 'TLSv1.3' } }));
    const answer = await get(strict);
    expect(answer).toMatchObject({ status: 502, code: 'UPSTREAM_TLS_FAILED' });
    expect(answer.message).toContain('upstream api: the TLS handshake failed');
    expect(answer.message).toContain('upstreams.api.tls.minVersion');
    expect(target.requests).toHaveLength(0);

    const usual = await startProxy(apiConfig({ target: target.origin, provider, tls: { caFile: caA.certFile } }));
    expect((await get(usual)).status).toBe(200);
  });
});

describe('client certificate rotation', () => {
  /** Requests one after another until stopped; every answer's status and the serial the server saw. */
  function keepRequesting(proxy: RunningProxy, target: TlsUpstream): { stop(): Promise<{ statuses: number[]; serials: string[] }> } {
    let running = true;
    const statuses: number[] = [];
    const loop = (async () => {
      while (running) {
        statuses.push((await get(proxy)).status);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return { statuses, serials: target.requests.map((request) => request.clientSerial ?? '') };
      },
    };
  }

  /** The serials in the order seen, each run of equal ones collapsed: [A, B] means A, then only B. */
  function runs(serials: readonly string[]): string[] {
    return serials.filter((serial, index) => index === 0 || serial !== serials[index - 1]);
  }

  it('files overwritten in place: new connections present the new certificate, no request fails; a broken rotation is refused once', async () => {
    const passphrase = 'rotation-passphrase-4b8e';
    const target = await startTlsUpstream(caA.issueServer(), { clientCa });
    const provider = await startTokenEndpoint();
    const certA = clientCa.issueClient('client-a', { passphrase });
    const certB = clientCa.issueClient('client-b', { passphrase });
    const certC = clientCa.issueClient('client-c', { passphrase });
    const certFile = tempFile('tls.crt', certA.certPem);
    const keyFile = path.join(path.dirname(certFile), 'tls.key');
    writeFileSync(keyFile, certA.keyPem, { mode: 0o600 });
    const passphraseFile = tempFile('passphrase', passphrase);
    const proxy = await startProxy(
      apiConfig({
        target: target.origin,
        provider,
        tls: { caFile: caA.certFile, certFile, keyFile, passphraseFile, reloadIntervalMs: 1000 },
      }),
    );

    expect((await get(proxy)).status).toBe(200);
    expect(target.requests[0]?.clientSerial).toBe(certA.serialHex);

    const traffic = keepRequesting(proxy, target);
    // As a Secret update lands without the symlink swap: the certificate first, then the key.
    writeFileSync(certFile, certB.certPem);
    writeFileSync(keyFile, certB.keyPem);
    await eventually(() => target.requests.at(-1)?.clientSerial === certB.serialHex, 15_000, 'a request with certificate B');
    const { statuses, serials } = await traffic.stop();
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(runs(serials)).toEqual([certA.serialHex, certB.serialHex]);
    expect(proxy.logs.some((line) => line.event === 'tls_client_reloaded')).toBe(true);

    // Certificate C with key B: they do not belong together, so B stays in use. The upstream's tls applies to
    // its token endpoint too, whose client polls the same files: one warning per peer.
    const refusals = (peer: string) => proxy.logs.filter((line) => line.event === 'tls_client_reload_failed' && line.peer === peer);
    const before = refusals('upstream api').length;
    const beforeTokenEndpoint = refusals('the token endpoint of api').length;
    writeFileSync(certFile, certC.certPem);
    await eventually(() => refusals('upstream api').length > before, 15_000, 'the refused rotation to be logged');
    // A few more ticks over the same broken files: still that one warning.
    const seenBefore = target.requests.length;
    for (let i = 0; i < 6; i++) {
      expect((await get(proxy)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(refusals('upstream api')).toHaveLength(before + 1);
    expect(refusals('upstream api').at(-1)).toMatchObject({
      level: 'warn',
      reason: 'upstreams.api.tls: certFile and keyFile do not belong together',
    });
    expect(refusals('the token endpoint of api').length).toBeLessThanOrEqual(beforeTokenEndpoint + 1);
    expect(target.requests.slice(seenBefore).map((request) => request.clientSerial)).toEqual(Array(6).fill(certB.serialHex));
    expect(proxy.rawLogs()).not.toContain(passphrase);
  });

  it('the Kubernetes symlink swap (..data replaced atomically): picked up, no request fails', async () => {
    const target = await startTlsUpstream(caA.issueServer(), { clientCa });
    const provider = await startTokenEndpoint();
    const certA = clientCa.issueClient('client-a');
    const certB = clientCa.issueClient('client-b');

    // The layout kubelet writes for a Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/.
    const volume = mkdtempSync(path.join(tmpdir(), 'egress-tls-secret-'));
    onTestFinished(() => rmSync(volume, { recursive: true, force: true }));
    const writeVersion = (name: string, issued: Issued) => {
      mkdirSync(path.join(volume, name));
      writeFileSync(path.join(volume, name, 'tls.crt'), issued.certPem);
      writeFileSync(path.join(volume, name, 'tls.key'), issued.keyPem, { mode: 0o600 });
    };
    writeVersion('..2026_01_01_00_00_00.000000001', certA);
    symlinkSync('..2026_01_01_00_00_00.000000001', path.join(volume, '..data'));
    symlinkSync('..data/tls.crt', path.join(volume, 'tls.crt'));
    symlinkSync('..data/tls.key', path.join(volume, 'tls.key'));

    const proxy = await startProxy(
      apiConfig({
        target: target.origin,
        provider,
        tls: {
          caFile: caA.certFile,
          certFile: path.join(volume, 'tls.crt'),
          keyFile: path.join(volume, 'tls.key'),
          reloadIntervalMs: 1000,
        },
      }),
    );
    expect((await get(proxy)).status).toBe(200);
    expect(target.requests[0]?.clientSerial).toBe(certA.serialHex);

    const traffic = keepRequesting(proxy, target);
    writeVersion('..2026_01_02_00_00_00.000000002', certB);
    symlinkSync('..2026_01_02_00_00_00.000000002', path.join(volume, '..data_tmp'));
    renameSync(path.join(volume, '..data_tmp'), path.join(volume, '..data'));
    rmSync(path.join(volume, '..2026_01_01_00_00_00.000000001'), { recursive: true });
    await eventually(() => target.requests.at(-1)?.clientSerial === certB.serialHex, 15_000, 'a request with certificate B');
    const { statuses, serials } = await traffic.stop();
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(runs(serials)).toEqual([certA.serialHex, certB.serialHex]);
    expect(proxy.logs.filter((line) => line.event === 'tls_client_reload_failed')).toEqual([]);
  });
});
