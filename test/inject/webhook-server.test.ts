/** The injector end to end: a real HTTPS server on port 0 with a certificate made by openssl. */
import { request } from 'node:https';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createInjectWebhook, type InjectWebhook } from '../../src/inject/webhook-server.js';
import { parseInjectWebhookArgs, runInjectWebhook } from '../../src/cli/commands/inject-webhook.js';
import { createLogger } from '../../src/log.js';
import { admissionReview, barePod, image, injectAnnotations } from './fixtures.js';
import { applyPatch, type PatchOperation } from './helpers/json-patch.js';
import { unknownFieldProblems, validateWithSchema, type K8sObject } from './helpers/k8s-validate.js';
import { makeTestCert, type TestCert } from './helpers/tls.js';

interface Started {
  webhook: InjectWebhook;
  cert: TestCert;
  logs: string[];
}

async function startWebhook(): Promise<Started> {
  const cert = makeTestCert();
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const webhook = createInjectWebhook({ certPem: cert.certPem, keyPem: cert.keyPem, image, port: 0, host: '127.0.0.1', logger });
  await webhook.start();
  onTestFinished(() => webhook.stop());
  return { webhook, cert, logs };
}

// The replies are JSON whose shape the assertions check.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON, read by path in assertions
type Loose = any;

interface Reply {
  status: number;
  body: Loose;
}

function call(started: Started, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: started.webhook.address().port,
        method,
        path,
        ca: started.cert.caPem,
        servername: 'localhost',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('inject webhook over HTTPS', () => {
  it('answers a pod review with the uid and a base64 JSON Patch that injects the sidecar', async () => {
    const started = await startWebhook();
    const pod = barePod(injectAnnotations) as K8sObject & { spec: { containers: { env: unknown[] }[] } };
    pod.spec.containers[0]!.env = [{ name: 'DO_NOT_LOG', value: 'marker-value-1f3a' }];
    const review = admissionReview(pod, { uid: 'b1c2d3e4-0000-4000-8000-000000000001' });
    const reply = await call(started, 'POST', '/mutate', JSON.stringify(review));

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'b1c2d3e4-0000-4000-8000-000000000001', allowed: true, patchType: 'JSONPatch' },
    });
    const ops = JSON.parse(Buffer.from(reply.body.response.patch, 'base64').toString()) as PatchOperation[];
    const out = applyPatch(pod, ops) as Record<string, Loose>;
    expect(out.spec.initContainers[0]).toMatchObject({ name: 'oauth-sidecar', image, restartPolicy: 'Always' });
    expect(out.spec.containers[0].env).toEqual([
      { name: 'DO_NOT_LOG', value: 'marker-value-1f3a' },
      { name: 'COLLABORATE_URL', value: 'http://127.0.0.1:8080/collaborate' },
      { name: 'APIAX_URL', value: 'http://127.0.0.1:8080/apiax' },
    ]);
    await validateWithSchema(out as K8sObject);
    expect(unknownFieldProblems([{ label: 'patched pod', obj: out as K8sObject }])).toEqual([]);
    expect(started.webhook.counts).toMatchObject({ injected: 1, denied: 0, errors: 0 });

    const line = JSON.parse(started.logs.find((l) => l.includes('"event":"injected"')) ?? '{}');
    expect(line).toMatchObject({ uid: 'b1c2d3e4-0000-4000-8000-000000000001', namespace: 'team-a', native: true, ops: 6 });
    expect(started.logs.join('')).not.toContain('marker-value-1f3a');
  });

  it('passes other pods without a patch, and refuses bad annotations with the reason', async () => {
    const started = await startWebhook();
    const plain = await call(started, 'POST', '/mutate', JSON.stringify(admissionReview(barePod({}), { uid: 'u-plain' })));
    expect(plain.body.response).toEqual({ uid: 'u-plain', allowed: true });

    const bad = barePod({ 'oauth-sidecar.io/inject': 'true' });
    const denied = await call(started, 'POST', '/mutate', JSON.stringify(admissionReview(bad, { uid: 'u-bad' })));
    expect(denied.status).toBe(200);
    expect(denied.body.response).toEqual({
      uid: 'u-bad',
      allowed: false,
      status: { code: 400, message: 'oauth-sidecar injection: oauth-sidecar.io/config must name the ConfigMap that holds proxy.yaml' },
    });
    expect(started.webhook.counts).toMatchObject({ unchanged: 1, denied: 1 });
  });

  it('lets a non-Pod object through with a warning about the webhook rules', async () => {
    const started = await startWebhook();
    const review = admissionReview({ kind: 'Deployment' }, { uid: 'u-deploy', kind: { group: 'apps', version: 'v1', kind: 'Deployment' } });
    const reply = await call(started, 'POST', '/mutate', JSON.stringify(review));
    expect(reply.body.response).toMatchObject({ uid: 'u-deploy', allowed: true });
    expect(reply.body.response).not.toHaveProperty('patch');
    expect(reply.body.response.warnings[0]).toMatch(/only handles core\/v1 Pods, not Deployment/);
  });

  it('answers malformed reviews with 400 and a reason, and keeps serving', async () => {
    const started = await startWebhook();
    const cases: Array<[string, RegExp]> = [
      ['{not json', /body is not JSON/],
      ['[]', /not a JSON object/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /admissionReviewVersions: \[v1\]/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request is missing/],
      [
        JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod', version: 'v1' } } }),
        /uid is missing/,
      ],
    ];
    for (const [body, message] of cases) {
      const reply = await call(started, 'POST', '/mutate', body);
      expect(reply.status, body).toBe(400);
      expect(reply.body.error.message).toMatch(message);
    }
    // A review with no object at all is answered (refused), not crashed on.
    const empty = admissionReview(undefined, { uid: 'u-empty' });
    expect((await call(started, 'POST', '/mutate', JSON.stringify(empty))).body.response).toMatchObject({ uid: 'u-empty', allowed: false });
    const tooBig = await call(started, 'POST', '/mutate', 'x'.repeat(5 * 1024 * 1024));
    expect(tooBig.status).toBe(413);
    expect(started.webhook.counts.errors).toBe(cases.length + 1);
    expect((await call(started, 'GET', '/healthz')).status).toBe(200);
  });

  it('serves /healthz, and 404/405 elsewhere', async () => {
    const started = await startWebhook();
    expect(await call(started, 'GET', '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await call(started, 'GET', '/mutate')).status).toBe(405);
    expect((await call(started, 'POST', '/other')).status).toBe(404);
  });
});

describe('inject-webhook arguments', () => {
  it('needs both TLS files and takes --listen and --image', () => {
    expect(parseInjectWebhookArgs(['--tls-cert', 'c.pem', '--tls-key=k.pem'], {})).toMatchObject({
      certFile: 'c.pem',
      keyFile: 'k.pem',
      host: '0.0.0.0',
      port: 8443,
      image: 'oauth-sidecar:0.1.0',
    });
    expect(parseInjectWebhookArgs(['--tls-cert', 'c', '--tls-key', 'k', '--listen', '[::1]:9443', '--image', 'x:1'], {})).toMatchObject({
      host: '::1',
      port: 9443,
      image: 'x:1',
    });
    expect(parseInjectWebhookArgs(['--tls-cert', 'c', '--tls-key', 'k'], { OAUTH_SIDECAR_IMAGE: 'env:2' }).image).toBe('env:2');
    expect(() => parseInjectWebhookArgs(['--tls-cert', 'c'], {})).toThrow('--tls-key is required');
    expect(() => parseInjectWebhookArgs([], {})).toThrow('--tls-cert and --tls-key are required');
    expect(() => parseInjectWebhookArgs(['--tls-cert', 'c', '--tls-key', 'k', '--listen', '8443'], {})).toThrow('HOST:PORT');
  });

  it('names an unknown option without echoing its value', () => {
    expect(() => parseInjectWebhookArgs(['--tls-key-pem=-----BEGIN PRIVATE KEY-----'], {})).toThrow(/^unknown option "--tls-key-pem"$/);
  });

  it('exits 2 on a usage error and 1 when the TLS files cannot be read, before listening', async () => {
    const stderr = captureStderr();
    expect(await runInjectWebhook(['--tls-cert', 'c'])).toBe(2);
    expect(await runInjectWebhook(['--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'])).toBe(1);
    expect(stderr.text()).toContain('cannot read TLS files (ENOENT)');
  });
});

function captureStderr() {
  const chunks: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  onTestFinished(() => {
    process.stderr.write = original;
  });
  return { text: () => chunks.join('') };
}
