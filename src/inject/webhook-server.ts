/**
 * The mutating admission webhook: HTTPS, POST /mutate takes an AdmissionReview (admission.k8s.io/v1) and
 * answers with the review's uid and, for pods that ask for it, a base64 JSON Patch; GET /healthz for probes.
 * A request the injector cannot understand is answered, never thrown: the API server applies the
 * webhook's failurePolicy to errors, so a crash here would block or silently pass every pod.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProxyError, SidecarError } from '../errors.js';
import type { Logger } from '../log.js';
import { sendProxyError } from '../http/error-response.js';
import { requestIdFrom } from '../http/request-id.js';
import {
  AdmissionReviewError,
  denyResponse,
  parseAdmissionReview,
  patchResponse,
  reviewResponse,
  type AdmissionRequest,
  type AdmissionReviewResponse,
} from './admission-review.js';
import { mutatePod } from './mutate-pod.js';

/** AdmissionReviews carry the whole object; etcd's 1.5 MiB object limit, twice over for old+new, is plenty. */
const maxBodyBytes = 4 * 1024 * 1024;

export interface InjectWebhookOptions {
  readonly certPem: string | Buffer;
  readonly keyPem: string | Buffer;
  /** The sidecar image the injector puts into pods. */
  readonly image: string;
  readonly port: number;
  readonly host: string;
  readonly logger: Logger;
}

export interface InjectWebhook {
  start(): Promise<void>;
  /** The bound address, once started (port 0 gives a free port). */
  address(): AddressInfo;
  /** New connections get this pair; throws (keeping the old one) when it does not load. */
  setCertificate(certPem: Buffer, keyPem: Buffer): void;
  stop(): Promise<void>;
  /** What happened so far: injected, unchanged, denied, errors (malformed reviews). */
  readonly counts: Readonly<Record<'injected' | 'unchanged' | 'denied' | 'errors', number>>;
}

export function createInjectWebhook(options: InjectWebhookOptions): InjectWebhook {
  if (!options.image) throw new TypeError('createInjectWebhook: image is required');
  const { logger } = options;
  const counts = { injected: 0, unchanged: 0, denied: 0, errors: 0 };

  const review = (request: AdmissionRequest): AdmissionReviewResponse => {
    const fields = {
      uid: request.uid,
      namespace: request.namespace,
      name: request.name,
      operation: request.operation,
      dryRun: request.dryRun,
    };
    if (request.kind.group !== '' || request.kind.version !== 'v1' || request.kind.kind !== 'Pod') {
      // Misconfigured rules: let the object through (this webhook has nothing to add) but say so.
      counts.unchanged += 1;
      logger.warn({ event: 'inject_wrong_kind', ...fields, kind: request.kind.kind }, 'review for a kind other than Pod');
      return reviewResponse({
        uid: request.uid,
        allowed: true,
        warnings: [`oauth-sidecar injector only handles core/v1 Pods, not ${request.kind.kind}; check the webhook rules`],
      });
    }
    const result = mutatePod(request.object, { image: options.image });
    switch (result.kind) {
      case 'unchanged':
        counts.unchanged += 1;
        logger.debug({ event: 'inject_skipped', ...fields, reason: result.reason }, 'pod left unchanged');
        return patchResponse(request.uid, []);
      case 'denied':
        counts.denied += 1;
        logger.info({ event: 'inject_denied', ...fields, reason: result.message }, 'pod refused');
        return denyResponse(request.uid, result.message);
      case 'patched':
        counts.injected += 1;
        logger.info({ event: 'injected', ...fields, native: result.native, ops: result.ops.length }, 'sidecar injected');
        return patchResponse(request.uid, result.ops);
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handleMutate = async (req: IncomingMessage, res: ServerResponse, requestId: string) => {
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'));
    } catch (error) {
      counts.errors += 1;
      const refusal = error instanceof ProxyError ? error : new ProxyError('BAD_REVIEW', 'body is not JSON');
      logger.info(
        { event: 'inject_bad_request', reqId: requestId, reason: refusal.code === 'REVIEW_TOO_LARGE' ? 'too_large' : 'not_json' },
        'unreadable review',
      );
      sendProxyError(res, refusal, requestId);
      return;
    }
    let request: AdmissionRequest;
    try {
      request = parseAdmissionReview(body);
    } catch (error) {
      if (!(error instanceof AdmissionReviewError)) throw error;
      counts.errors += 1;
      logger.info({ event: 'inject_bad_request', reqId: requestId, reason: error.message }, 'malformed review');
      sendProxyError(res, error, requestId);
      return;
    }
    send(res, 200, review(request));
  };

  const server: Server = createServer({ cert: options.certPem, key: options.keyPem }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const requestId = requestIdFrom(req.headers);
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      send(res, 200, { status: 'ok' });
    } else if (path === '/mutate' && req.method === 'POST') {
      handleMutate(req, res, requestId).catch((error: unknown) => {
        counts.errors += 1;
        logger.error(
          { event: 'inject_failed', reqId: requestId, err: error instanceof Error ? error.message : String(error) },
          'injector error',
        );
        sendProxyError(res, new ProxyError('INTERNAL', 'internal error'), requestId);
      });
    } else if (path === '/mutate' || path === '/healthz') {
      sendProxyError(res, new ProxyError('METHOD_NOT_ALLOWED', 'method not allowed'), requestId);
    } else {
      sendProxyError(res, new ProxyError('ROUTE_NOT_FOUND', 'webhook endpoints: POST /mutate, GET /healthz'), requestId);
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  return {
    counts,
    start: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    setCertificate: (certPem, keyPem) => server.setSecureContext({ cert: certPem, key: keyPem }),
    address: () => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new SidecarError('INTERNAL', 'inject webhook is not listening');
      return address;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

/** Reads the body; past the limit it keeps draining (so the 413 can still be sent) but stops keeping it. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () =>
      size > maxBodyBytes ? reject(new ProxyError('REVIEW_TOO_LARGE', 'review too large')) : resolve(Buffer.concat(chunks)),
    );
  });
}
