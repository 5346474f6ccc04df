import { request } from 'node:https';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert } from '../inject/helpers/tls.js';
import { ensureBuilt, startCli } from '../helpers/run-cli.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

function getHealthz(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', checkServerIdentity: () => undefined }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
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
});
