import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { ensureBuilt, runCli } from '../helpers/run-cli.js';
import { eventually, startProxy } from '../helpers/start-proxy.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

const SEED = 'rt-seed-Hq2Lm8Vx41';

function workspace(upstreamBlock: string): { dir: string; configPath: string; storePath: string; yaml: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-seed-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const storePath = join(dir, 'tokens.json');
  const yaml = `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: file, path: ${storePath} }\nupstreams:\n${upstreamBlock}`;
  const configPath = join(dir, 'proxy.yaml');
  writeFileSync(configPath, yaml);
  return { dir, configPath, storePath, yaml };
}

const offlineUpstream = `  apiax:
    target: https://api.apiax.io
    auth: { preset: apiax, tokenUrl: https://auth.apiax.io/token }
`;

function storedRecord(storePath: string, upstream: string): Record<string, unknown> {
  const file = JSON.parse(readFileSync(storePath, 'utf8')) as { records: Record<string, Record<string, unknown>> };
  return file.records[upstream] ?? {};
}

describe('oauth-sidecar seed', () => {
  it('writes the refresh token from stdin as generation 1 and prints only its fingerprint', async () => {
    const { configPath, storePath } = workspace(offlineUpstream);
    const result = await runCli(['seed', 'apiax', '--config', configPath], { input: `${SEED}\n` });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^seeded apiax: generation 1, refresh token [0-9a-f]{8} \(file /);
    expect(result.stdout + result.stderr).not.toContain(SEED);
    expect(storedRecord(storePath, 'apiax')).toMatchObject({ generation: 1, refreshToken: SEED, source: 'seed-command' });
  });

  it('refuses to replace a live record without --force, and replaces it with --force', async () => {
    const { configPath, storePath } = workspace(offlineUpstream);
    expect((await runCli(['seed', 'apiax', '--config', configPath], { input: SEED })).code).toBe(0);
    const refused = await runCli(['seed', 'apiax', '--config', configPath], { input: 'rt-other-token' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already has a live record (generation 1); use --force');
    expect(storedRecord(storePath, 'apiax')).toMatchObject({ generation: 1, refreshToken: SEED });
    const forced = await runCli(['seed', 'apiax', '--force', '--config', configPath], { input: 'rt-other-token' });
    expect(forced.code).toBe(0);
    expect(storedRecord(storePath, 'apiax')).toMatchObject({ generation: 2, refreshToken: 'rt-other-token' });
  });

  it('never takes the token from argv, and rejects unknown upstreams and empty input', async () => {
    const { configPath } = workspace(offlineUpstream);
    const onArgv = await runCli(['seed', 'apiax', SEED, '--config', configPath], { input: '' });
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toContain('seed takes one upstream name');
    expect(onArgv.stderr).not.toContain(SEED);
    const unknown = await runCli(['seed', 'nope', '--config', configPath], { input: SEED });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no upstream named "nope"');
    const empty = await runCli(['seed', 'apiax', '--config', configPath], { input: '\n' });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('empty');
  });

  it('revives a dead credential in a running proxy that shares the file store', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    onTestFinished(() => provider.close());
    const { configPath, yaml } = workspace(`  apiax:
    target: ${provider.apiBaseUrl}
    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: rt-unknown-to-the-provider }
`);
    const proxy = await startProxy(yaml);
    await eventually(
      async () =>
        ((await fetch(`${proxy.adminUrl}/readyz`).then((r) => r.json())) as { notReady?: { apiax?: { state: string } } }).notReady?.apiax
          ?.state === 'credential_dead',
      5000,
      'credential_dead',
    );
    expect((await fetch(`${proxy.url}/apiax/x`)).status).toBe(503);

    const seeded = await runCli(['seed', 'apiax', '--config', configPath], { input: provider.issueRefreshToken() });
    expect(seeded.code).toBe(0);
    await eventually(async () => (await fetch(`${proxy.adminUrl}/readyz`)).status === 200, 8000, 'ready after seeding');
    const response = await fetch(`${proxy.url}/apiax/x`);
    expect(response.status).toBe(200);
    expect(provider.counters.reuseAttempts).toBe(0);
  });
});
