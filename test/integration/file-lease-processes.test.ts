/**
 * Two `oauth-sidecar serve` processes on one token file (two services on one volume, the old and the new
 * pod of a rolling update): only one may refresh, or a one-time refresh token is spent twice. The second
 * starts unready and says why; when the first stops it takes over the file and serves with the stored
 * token, without a token call of its own. Real processes, a real file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startProxyProcess, waitUntil, writeProxyConfig } from '../helpers/proxy-process.js';
import { ensureBuilt } from '../helpers/run-cli.js';
import { configYaml } from '../helpers/start-proxy.js';
import { provider, upstreamYaml } from './token-fixtures.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

describe('one proxy per token file', () => {
  it('a second proxy on the same file waits unready, then takes over when the first stops', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-lease-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const fake = await provider({ kind: 'apiax' });
    const top = `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, accessLog: false }\nstore: { type: file, path: ${join(dir, 'tokens.json')} }\n`;
    const config = writeProxyConfig(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken() }), top));

    const first = await startProxyProcess(config, 'first');
    expect((await fetch(`${first.url}/apiax/x`)).status).toBe(200);
    const second = await startProxyProcess(config, 'second');
    const waiting = await second.readyz();
    expect(waiting.status).toBe(503);
    expect(waiting.body.notReady?.apiax?.reason).toMatch(new RegExp(`in use by another oauth-sidecar \\(pid ${first.pid} on `));
    expect((await fetch(`${second.url}/apiax/x`)).status).toBe(503);

    first.cli.child.kill('SIGTERM'); // a clean stop releases the lease
    expect((await first.cli.exited).code).toBe(0);
    const tookOverAfterMs = await waitUntil(
      'the second proxy to take over the file',
      async () => (await second.readyz()).status === 200,
      15_000,
    );
    expect((await fetch(`${second.url}/apiax/y`)).status).toBe(200);
    expect(fake.counters.tokenCalls).toBe(1); // the stored token, not a refresh of its own
    expect(fake.counters.reuseAttempts).toBe(0);
    console.info(`second proxy on one token file: ready ${tookOverAfterMs} ms after the first stopped`);
  });
});
