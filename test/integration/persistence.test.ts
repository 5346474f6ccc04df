/**
 * The durable file store (rotated refresh tokens survive a restart, a
 * spent seed is never resent, mode 0600, a corrupt file stops start-up untouched) and stopping the
 * proxy while a request is in flight.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { FakeProvider } from '../helpers/fake-provider.js';
import { configYaml, eventually, startProxy } from '../helpers/start-proxy.js';
import type { TokenRecord } from '../../src/store/token-store.js';
import {
  MEMORY_TOP,
  bearersSeen,
  fileTop,
  metricsText,
  provider,
  readyz,
  sample,
  setup,
  tokenForms,
  upstreamYaml,
} from './token-fixtures.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oauth-sidecar-store-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function storedRecord(path: string, upstream: string): Promise<TokenRecord | undefined> {
  const contents = JSON.parse(await readFile(path, 'utf8')) as { records: Record<string, TokenRecord> };
  return contents.records[upstream];
}

const refreshTokens = (fake: FakeProvider) => fake.issuedTokens.filter((token) => token.startsWith(`${fake.kind}-rt-`));

describe('durable file store', () => {
  it('a restart after rotations uses the stored token and never resends the spent seed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'data', 'tokens.json');
    const fake = await provider({ kind: 'apiax' }); // Keycloak: a resent spent token would kill the session
    const seed = fake.issueRefreshToken();
    const yaml = configYaml(upstreamYaml(fake, { seed }), fileTop(path));

    const first = await startProxy(yaml);
    expect((await fetch(`${first.url}/apiax/one`)).status).toBe(200);
    // The record is on disk before the token it holds is used.
    const afterFirstUse = await storedRecord(path, 'apiax');
    expect(`Bearer ${afterFirstUse?.accessToken}`).toBe(bearersSeen(fake)[0]);
    fake.expireAccessTokens();
    expect((await fetch(`${first.url}/apiax/two`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
    await first.stop();

    const latest = refreshTokens(fake).at(-1);
    const record = await storedRecord(path, 'apiax');
    expect(record?.refreshToken).toBe(latest);
    expect(record?.refreshToken).not.toBe(seed);
    expect(`Bearer ${record?.accessToken}`).toBe(bearersSeen(fake).at(-1));
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');

    // Same config, so the same (now spent) seed: the stored token wins and no token call is needed.
    const second = await startProxy(yaml);
    expect((await fetch(`${second.url}/apiax/three`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(2);
    expect(bearersSeen(fake).at(-1)).toBe(`Bearer ${record?.accessToken}`);

    // And its next refresh presents the stored refresh token.
    fake.expireAccessTokens();
    expect((await fetch(`${second.url}/apiax/four`)).status).toBe(200);
    expect(tokenForms(fake)[2]?.get('refresh_token')).toBe(latest);
    expect(
      tokenForms(fake)
        .slice(1)
        .map((form) => form.get('refresh_token')),
    ).not.toContain(seed);
    expect(fake.counters.reuseAttempts).toBe(0);
    expect((await storedRecord(path, 'apiax'))?.refreshToken).toBe(refreshTokens(fake).at(-1));
  });

  it('a restart after the stored access token expired refreshes with the stored refresh token, not the seed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'tokens.json');
    const fake = await provider({ kind: 'v3', accessTokenLifetimeSeconds: 1 });
    const seed = fake.issueRefreshToken();
    const yaml = configYaml(upstreamYaml(fake, { seed }), fileTop(path));

    const first = await startProxy(yaml);
    expect((await fetch(`${first.url}/v3/one`)).status).toBe(200);
    await first.stop();
    const record = await storedRecord(path, 'v3');
    expect(record?.refreshToken).toBe(refreshTokens(fake).at(-1));
    const callsBeforeRestart = fake.counters.tokenCalls;
    await eventually(() => Date.now() > (record?.accessTokenExpiresAt ?? 0) + 50, 3000, 'the stored access token to expire');

    const second = await startProxy(yaml);
    expect((await fetch(`${second.url}/v3/two`)).status).toBe(200);
    const sentAfterRestart = tokenForms(fake)
      .slice(callsBeforeRestart)
      .map((form) => form.get('refresh_token'));
    expect(sentAfterRestart[0]).toBe(record?.refreshToken);
    expect(sentAfterRestart).not.toContain(seed);
    for (const req of fake.tokenRequests.slice(callsBeforeRestart)) expect(req.body.toString('utf8')).not.toContain(seed);
    expect(fake.counters.reuseAttempts).toBe(0);
  });

  it('a dead credential stays dead across a restart without resending the seed; a new seed in the config revives it', async () => {
    const dir = await tempDir();
    const path = join(dir, 'tokens.json');
    const fake = await provider({ kind: 'apiax' });
    const badSeed = 'apiax-rt-never-issued-0000';

    const first = await startProxy(configYaml(upstreamYaml(fake, { seed: badSeed }), fileTop(path)));
    await eventually(async () => (await readyz(first)).body.notReady.apiax?.state === 'credential_dead', 3000, 'the credential to die');
    await first.stop();
    expect((await storedRecord(path, 'apiax'))?.dead?.reason).toMatch(/a new refresh token is needed: .*seed/);
    expect(fake.counters.tokenCalls).toBe(1);

    const second = await startProxy(configYaml(upstreamYaml(fake, { seed: badSeed }), fileTop(path)));
    const refused = await fetch(`${second.url}/apiax/x`);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_DEAD');
    expect((await readyz(second)).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.counters.tokenCalls).toBe(1);
    await second.stop();

    const goodSeed = fake.issueRefreshToken();
    const third = await startProxy(configYaml(upstreamYaml(fake, { seed: goodSeed }), fileTop(path)));
    expect((await fetch(`${third.url}/apiax/x`)).status).toBe(200);
    expect(tokenForms(fake).map((form) => form.get('refresh_token'))).toEqual([badSeed, goodSeed]);
    await eventually(async () => (await readyz(third)).status === 200, 2000, 'readyz to recover');
    expect(sample(await metricsText(third), 'oauth_sidecar_credential_dead', { upstream: 'apiax' })).toBe(0);
  });

  it('a corrupt token file fails start-up with a clear error and is left untouched', async () => {
    const dir = await tempDir();
    const path = join(dir, 'tokens.json');
    const corrupt = '{"version":1,"records":{"apiax":{"generation":3,"refreshToken":"only-copy"'; // torn JSON
    await writeFile(path, corrupt, { mode: 0o600 });
    const fake = await provider({ kind: 'apiax' });

    await expect(startProxy(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken() }), fileTop(path)))).rejects.toThrow(
      /token file .*tokens\.json is not a valid oauth-sidecar token file.*left untouched/,
    );
    expect(await readFile(path, 'utf8')).toBe(corrupt);
    expect(fake.counters.tokenCalls).toBe(0);
  });
});

describe('lifecycle', () => {
  it('stop() lets a slow in-flight request finish, refuses new connections, and does not wait out the drain time', async () => {
    // The client keeps its connection alive for about 3 s (undici's default): draining must not wait for that.
    const { fake, proxy, call } = await setup('collaborate', { top: MEMORY_TOP.replace('drainTimeoutMs: 5000', 'drainTimeoutMs: 2000') });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    fake.setApiHandler((req, res) => {
      if (!req.url.endsWith('/slow')) return void res.writeHead(200).end('ok');
      void gate.then(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow done'));
    });

    const slow = call('/slow');
    await eventually(() => fake.apiRequests.length === 1, 3000, 'the slow request to reach the upstream');
    const stopping = proxy.app.stop();

    const port = Number(new URL(proxy.url).port);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');

    release();
    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('slow done');
    await stopping;
    expect(proxy.logs.some((line) => line.event === 'drain_timeout')).toBe(false);
  });
});
