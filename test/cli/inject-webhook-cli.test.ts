import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert } from '../inject/helpers/tls.js';
import { ensureBuilt, startCli } from '../helpers/run-cli.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

function getHealthz(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // agent: false: a fresh connection (and handshake) every time, or a reused one would hide which certificate serves.
    request(
      { host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', checkServerIdentity: () => undefined, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
}

describe('oauth-sidecar inject-webhook (the CLI wiring)', () => {
  it('serves HTTPS health checks and exits 0 on SIGTERM', async () => {
    const cert = makeTestCert();
    const webhook = startCli(['inject-webhook', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--listen', '127.0.0.1:0']);
    const started = await webhook.waitForLog((line) => line.event === 'started', 10_000);
    expect(await getHealthz(Number(started.port), cert.caPem)).toBe(200);
    webhook.child.kill('SIGTERM');
    const result = await webhook.exited;
    expect(result.code).toBe(0);
  });

  it('serves a rotated certificate without a restart; a half-rotated pair keeps the old one serving', async () => {
    const first = makeTestCert();
    const webhook = startCli([
      'inject-webhook',
      '--tls-cert',
      first.certFile,
      '--tls-key',
      first.keyFile,
      '--listen',
      '127.0.0.1:0',
      '--tls-reload-seconds',
      '0.2',
    ]);
    const started = await webhook.waitForLog((line) => line.event === 'started', 10_000);
    const port = Number(started.port);
    expect(started.notAfter).toEqual(expect.any(String));
    expect(await getHealthz(port, first.caPem)).toBe(200);

    const next = makeTestCert(); // another CA: a client that trusts only it cannot talk to the old certificate
    writeFileSync(first.certFile, next.certPem); // the certificate lands before its key, as in a non-atomic update
    await webhook.waitForLog((line) => line.event === 'tls_reload_failed', 10_000);
    expect(await getHealthz(port, first.caPem)).toBe(200);

    writeFileSync(first.keyFile, next.keyPem);
    await webhook.waitForLog((line) => line.event === 'tls_reloaded', 10_000);
    expect(await getHealthz(port, next.caPem)).toBe(200);
    await expect(getHealthz(port, first.caPem)).rejects.toThrow();

    webhook.child.kill('SIGTERM');
    const result = await webhook.exited;
    expect(result.code).toBe(0);
    for (const key of [first.keyPem, next.keyPem]) expect(result.stdout + result.stderr).not.toContain(key.split('\n')[1]);
  });
});
