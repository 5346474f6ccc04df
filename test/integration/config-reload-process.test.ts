/**
 * Config reload on a real `serve` process, triggered the ways operators trigger it: a Kubernetes ConfigMap
 * volume update (the `..data` symlink swapped atomically to a new timestamped directory, which the file
 * path reaches through `proxy.yaml -> ..data/proxy.yaml`), and SIGHUP. A broken config is refused whole,
 * with every problem logged, and the running one keeps serving.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { startPlainUpstream } from '../helpers/plain-upstream.js';
import { startProxyProcess, waitUntil } from '../helpers/proxy-process.js';
import { send } from '../helpers/raw-http.js';

/** A directory laid out as kubelet lays out a ConfigMap volume, with `update` doing what kubelet does. */
function configMapVolume(firstText: string): { path: string; update(text: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-configmap-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  let version = 0;
  const write = (text: string) => {
    const versionDir = `..2026_12_03_${++version}`;
    mkdirSync(join(dir, versionDir));
    writeFileSync(join(dir, versionDir, 'proxy.yaml'), text);
    // kubelet: a new symlink under a temporary name, renamed over ..data (an atomic swap).
    symlinkSync(versionDir, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  write(firstText);
  symlinkSync('..data/proxy.yaml', join(dir, 'proxy.yaml'));
  return { path: join(dir, 'proxy.yaml'), update: write };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface StatusBody {
  config: {
    sha256: string;
    loadedAt: string;
    reloads: { applied: number; refused: number; lastRefusal?: { sha256: string; problems: number } };
  };
  upstreams: { upstream: string }[];
}

describe('config reload (real process)', () => {
  it('follows a ConfigMap symlink swap, refuses a broken config whole, and reloads on SIGHUP', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    onTestFinished(() => provider.close());
    const first = await startPlainUpstream();
    const second = await startPlainUpstream();
    // One refresh token per upstream: the provider rotates them, and two upstreams must not share one.
    const seeds = { one: provider.issueRefreshToken(), two: provider.issueRefreshToken(), three: provider.issueRefreshToken() };
    const config = (routes: string) =>
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\nreload: { intervalMs: 200 }\nupstreams:\n${routes}`;
    const route = (name: keyof typeof seeds, origin: string) =>
      `  ${name}:\n    target: ${origin}\n    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: ${seeds[name]} }\n`;

    const v1 = config(route('one', first.origin));
    const volume = configMapVolume(v1);
    const proxy = await startProxyProcess(volume.path, 'reloading');
    const status = async () => (await (await fetch(`${proxy.adminUrl}/status`)).json()) as StatusBody;
    expect((await status()).config.sha256).toBe(sha256(v1));
    expect((await send(`${proxy.url}/one/a`)).status).toBe(200);

    // 1. The ConfigMap changes: a second upstream appears, without a restart.
    const v2 = config(route('one', first.origin) + route('two', second.origin));
    volume.update(v2);
    await waitUntil('the symlink swap to be applied', () => proxy.events('config_reloaded').length > 0, 10_000);
    expect((await status()).config.sha256).toBe(sha256(v2));
    expect((await send(`${proxy.url}/two/b`)).status).toBe(200);
    expect(second.requests.map((request) => request.url)).toEqual(['/b']);
    expect(proxy.events('config_reloaded')).toMatchObject([{ reason: 'file changed', added: ['two'], unchanged: ['one'] }]);

    // 2. A broken ConfigMap: refused whole, every problem logged, the running config keeps serving.
    const broken = config(route('one', first.origin) + route('three', 'ftp://nowhere')).replace('listen: 127.0.0.1:0', 'listen: nonsense');
    volume.update(broken);
    await waitUntil('the broken config to be refused', () => proxy.events('config_reload_refused').length > 0, 10_000);
    const [refusal] = proxy.events('config_reload_refused') as { problems: string[]; sha256: string }[];
    expect(refusal!.sha256).toBe(sha256(broken));
    expect(refusal!.problems.join('\n')).toMatch(/listen: expected host:port/);
    expect(refusal!.problems.join('\n')).toMatch(/upstreams\.three\.target/);
    const afterRefusal = await status();
    expect(afterRefusal.config.sha256).toBe(sha256(v2));
    expect(afterRefusal.config.reloads).toMatchObject({ applied: 1, refused: 1, lastRefusal: { sha256: sha256(broken), problems: 2 } });
    expect((await send(`${proxy.url}/two/c`)).status).toBe(200);
    // Refused once, not on every tick while the file stays broken.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(proxy.events('config_reload_refused')).toHaveLength(1);

    // 3. SIGHUP reloads the file as it is, here a fixed one that removes `one`.
    const v3 = config(route('two', second.origin));
    volume.update(v3);
    proxy.cli.child.kill('SIGHUP');
    await waitUntil('the SIGHUP reload', () => proxy.events('config_reloaded').some((event) => event.reason === 'SIGHUP'), 10_000);
    expect((await status()).config.sha256).toBe(sha256(v3));
    expect((await send(`${proxy.url}/one/d`)).status).toBe(404);
    expect((await send(`${proxy.url}/two/e`)).status).toBe(200);
    expect((await status()).upstreams.map((upstream) => upstream.upstream)).toEqual(['two']);
    // The process is alive and still serving: SIGHUP did not terminate it.
    expect(proxy.cli.child.exitCode).toBeNull();
  });

  it('follows a rotated …File secret too: the upstream gets a new token manager with the new value', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    onTestFinished(() => provider.close());
    const upstream = await startPlainUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-secret-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'password'), 'first\n');
    const text =
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\nreload: { intervalMs: 200 }\nupstreams:\n` +
      `  one:\n    target: ${upstream.origin}\n` +
      `    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: ${provider.issueRefreshToken()}, username: user, passwordFile: password }\n`;
    writeFileSync(join(dir, 'proxy.yaml'), text);
    const proxy = await startProxyProcess(join(dir, 'proxy.yaml'), 'secret-follower');
    expect((await send(`${proxy.url}/one/a`)).status).toBe(200);

    writeFileSync(join(dir, 'password'), 'second\n');
    await waitUntil('the secret change to be applied', () => proxy.events('config_reloaded').length > 0, 10_000);
    expect(proxy.events('config_reloaded')).toMatchObject([{ reason: 'secret file changed', changed: ['one'] }]);
    expect(proxy.cli.stdout() + proxy.cli.stderr()).not.toContain('second');
    expect((await send(`${proxy.url}/one/b`)).status).toBe(200);
  });
});
