/**
 * The injection webhook's error answers go through the one error writer: every refusal (not JSON, not a
 * v1 AdmissionReview, too large, wrong path or method) carries a registered code whose status is the
 * response's, and a request id in the body and in X-Request-Id.
 */
import { request } from 'node:https';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ErrorRegistry } from '../../src/errors.js';
import { createInjectWebhook, type InjectWebhook } from '../../src/inject/webhook-server.js';
import { createLogger } from '../../src/log.js';
import { proxyError } from '../helpers/raw-http.js';
import { image } from './fixtures.js';
import { makeTestCert, type TestCert } from './helpers/tls.js';

interface Started {
  readonly webhook: InjectWebhook;
  readonly cert: TestCert;
}

async function startWebhook(): Promise<Started> {
  const cert = makeTestCert();
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  const webhook = createInjectWebhook({
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    image,
    port: 0,
    host: '127.0.0.1',
    logger: createLogger({ level: 'silent', destination: discard }),
  });
  await webhook.start();
  onTestFinished(() => webhook.stop());
  return { webhook, cert };
}

interface Answer {
  readonly status: number;
  readonly requestIdHeader: string | string[] | undefined;
  readonly body: string;
}

function call(started: Started, method: string, path: string, options: { body?: string; requestId?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: started.webhook.address().port,
        method,
        path,
        ca: started.cert.caPem,
        servername: 'localhost',
        headers: { 'content-type': 'application/json', ...(options.requestId ? { 'x-request-id': options.requestId } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, requestIdHeader: res.headers['x-request-id'], body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('inject webhook error answers', () => {
  it('every refusal carries a registered code matching its status and a request id', async () => {
    const started = await startWebhook();
    const refusals: Array<[method: string, path: string, body: string | undefined, code: string]> = [
      ['POST', '/mutate', '{not json', 'BAD_REVIEW'],
      ['POST', '/mutate', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 'BAD_REVIEW'],
      ['POST', '/mutate', 'x'.repeat(5 * 1024 * 1024), 'REVIEW_TOO_LARGE'],
      ['GET', '/mutate', undefined, 'METHOD_NOT_ALLOWED'],
      ['POST', '/other', undefined, 'ROUTE_NOT_FOUND'],
    ];
    for (const [method, path, body, code] of refusals) {
      const answer = await call(started, method, path, { ...(body === undefined ? {} : { body }) });
      const error = proxyError(answer.body);
      expect(error.code, `${method} ${path}`).toBe(code);
      expect(ErrorRegistry[code as keyof typeof ErrorRegistry], code).toMatchObject({ status: answer.status });
      expect(answer.requestIdHeader, code).toBe(error.requestId);
    }
  });

  it('keeps a safe X-Request-Id from the caller', async () => {
    const started = await startWebhook();
    const answer = await call(started, 'POST', '/mutate', { body: '[]', requestId: 'apiserver-call-9' });
    expect(answer.status).toBe(400);
    expect(proxyError(answer.body)).toMatchObject({
      code: 'BAD_REVIEW',
      message: 'body is not a JSON object',
      requestId: 'apiserver-call-9',
    });
    expect(answer.requestIdHeader).toBe('apiserver-call-9');
  });
});
