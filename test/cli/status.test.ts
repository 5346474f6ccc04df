import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { refusingPort } from '../helpers/ports.js';
import { startRedis } from '../helpers/redis-server.js';
import { ensureBuilt, runCli, startCli } from '../helpers/run-cli.js';
import { startProxy, type RunningProxy, type StartProxyOptions } from '../helpers/start-proxy.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

/**
 * A fake Apiax and a config for it; the store is a file in a temporary directory unless `store` says
 * otherwise. The proxy starts with its admin server on port 0 (`start`); the config file the CLI reads then
 * names the port it got, and once the proxy is stopped (`stop`), a port that refuses connections.
 */
async function setup(store?: string) {
  const provider = await startFakeProvider({ kind: 'apiax' });
  onTestFinished(() => provider.close());
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-status-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const refreshToken = provider.issueRefreshToken();
  const yaml = (adminPort: number | string) => `listen: 127.0.0.1:0
admin: 127.0.0.1:${adminPort}
store: ${store ?? `{ type: file, path: ${join(dir, 'tokens.json')} }`}
upstreams:
  apiax:
    target: ${provider.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: ${refreshToken} }
`;
  const configPath = join(dir, 'proxy.yaml');
  const start = async (options: StartProxyOptions = {}) => {
    const proxy = await startProxy(yaml(0), options);
    writeFileSync(configPath, yaml(new URL(proxy.adminUrl).port));
    return proxy;
  };
  const stop = async (proxy: RunningProxy) => {
    await proxy.stop();
    writeFileSync(configPath, yaml((await refusingPort()).port));
  };
  return { provider, configPath, start, stop };
}

describe('oauth-sidecar status', () => {
  it('asks the running proxy, prints JSON with fingerprints only, and exits 0 when all is ok', async () => {
    const { provider, configPath, start } = await setup();
    const proxy = await start();
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    const result = await runCli(['status', '--config', configPath, '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      source: string;
      upstreams: { upstream: string; state: string; generation: number; accessTokenFingerprint: string }[];
    };
    expect(report.source).toContain('running proxy');
    expect(report.upstreams[0]).toMatchObject({ upstream: 'apiax', state: 'ok', generation: 2 });
    expect(report.upstreams[0]?.accessTokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
    for (const token of provider.issuedTokens) expect(result.stdout).not.toContain(token);
  });

  it('reads the store when no proxy answers, as a table; an --admin that does not answer is an error', async () => {
    const { provider, configPath, start, stop } = await setup();
    const proxy = await start({ manualStop: true });
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    await stop(proxy);
    const ok = await runCli(['status', '--config', configPath]);
    expect(ok.stdout).toContain('token store');
    expect(ok.stdout).toMatch(/apiax\s+ok\s+2\s/);
    expect(ok.code).toBe(0);
    for (const token of provider.issuedTokens) expect(ok.stdout).not.toContain(token);

    const unknownAdmin = await runCli(['status', '--config', configPath, '--admin', `http://127.0.0.1:${(await refusingPort()).port}`]);
    expect(unknownAdmin.code).toBe(1);
    expect(unknownAdmin.stderr).toContain('no proxy answered');
  });

  it('counts the last hour: refreshes, a replay, the last refresh latency and the store, in --json and the table', async () => {
    const { provider, configPath, start } = await setup();
    const proxy = await start();
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    provider.expireAccessTokens(); // the next request is rejected upstream, refreshed and replayed
    const replayed = await fetch(`${proxy.url}/apiax/x`);
    expect(replayed.status).toBe(200);

    const json = await runCli(['status', '--config', configPath, '--json']);
    expect(json.code).toBe(0);
    const status = (JSON.parse(json.stdout) as { upstreams: Record<string, unknown>[] }).upstreams[0];
    expect(status).toMatchObject({
      upstream: 'apiax',
      state: 'ok',
      generation: 3,
      refreshing: false,
      lastRefresh: { outcome: 'success', reason: 'rejected' },
      lastHour: { refreshes: 2, failedRefreshes: 0, replays: 1, rejectedReplays: 0 },
      store: `file ${configPath.replace('proxy.yaml', 'tokens.json')}`,
    });
    expect((status?.lastRefresh as { latencyMs: unknown }).latencyMs).toEqual(expect.any(Number));

    const table = await runCli(['status', '--config', configPath]);
    expect(table.stdout).toMatch(/apiax\s+ok\s+3\s+\S+\s+\d+s ago success \d+ ms\s+2\s+1\s+[0-9a-f]{8}\s+file \//);
    for (const token of provider.issuedTokens) {
      expect(json.stdout).not.toContain(token);
      expect(table.stdout).not.toContain(token);
    }
  });

  it('--watch redraws every second until interrupted, then exits 0', async () => {
    const { configPath, start } = await setup();
    const proxy = await start();
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    const watching = startCli(['status', '--config', configPath, '--watch']);
    const frames = () => watching.stdout().split('oauth-sidecar status at ').slice(1);
    await waitFor(() => frames().length >= 2, 10_000, 'two frames');
    const [first, second] = frames();
    expect(first).toMatch(/apiax\s+ok\s+2\s/);
    // A second apart, by the time each frame carries.
    expect(Date.parse(second?.slice(0, 24) ?? '') - Date.parse(first?.slice(0, 24) ?? '')).toBeGreaterThanOrEqual(900);
    watching.child.kill('SIGINT');
    const result = await watching.exited;
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('shows the Redis endpoint as the store, from the proxy and straight from Redis (encrypted records)', async () => {
    const redis = await startRedis(onTestFinished);
    const { provider, configPath, start, stop } = await setup(
      `{ type: redis, url: ${redis.url}, keyPrefix: status-test, encryptionKey: ${'ab'.repeat(32)} }`,
    );
    const proxy = await start({ manualStop: true });
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(200);
    const endpoint = `redis 127.0.0.1:${redis.port}/0`;

    const fromProxy = await runCli(['status', '--config', configPath, '--json']);
    expect(JSON.parse(fromProxy.stdout)).toMatchObject({
      source: expect.stringContaining('running proxy'),
      upstreams: [{ upstream: 'apiax', state: 'ok', store: expect.stringContaining(endpoint) }],
    });

    await stop(proxy);
    const fromRedis = await runCli(['status', '--config', configPath]);
    expect(fromRedis.code).toBe(0);
    expect(fromRedis.stdout).toContain(`source: token store (redis redis://127.0.0.1:${redis.port}`);
    expect(fromRedis.stdout).toMatch(new RegExp(`apiax\\s+ok\\s+2\\s.*\\(stored\\).*${endpoint.replaceAll('.', '\\.')}`));
    for (const token of provider.issuedTokens) expect(fromProxy.stdout + fromRedis.stdout).not.toContain(token);
  });
});

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
