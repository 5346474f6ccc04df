/**
 * The admin listener: /healthz (the process serves), /readyz (every upstream holds a usable token),
 * /metrics (Prometheus), /status (the running config's hash, and per-upstream token state; fingerprints
 * only, never a token).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ProxyError } from '../errors.js';
import { sendProxyError } from '../http/error-response.js';
import { requestIdFrom } from '../http/request-id.js';
import type { TokenStatus } from '../tokens/token-status.js';

export interface AdminSources {
  registry: Registry;
  statuses(): TokenStatus[];
  isDraining(): boolean;
  version: string;
  startedAt: number;
  /** Which config runs: its file, SHA-256, when it was loaded, and how reloads went. */
  config(): ConfigStatus;
}

export interface ConfigStatus {
  readonly source: string;
  readonly sha256: string;
  /** ISO 8601. */
  readonly loadedAt: string;
  readonly reloads: {
    readonly applied: number;
    readonly refused: number;
    readonly lastRefusal?: { readonly at: string; readonly sha256: string; readonly problems: number };
  };
  /** Settings changed in the file that only a restart applies (listen, admin, store). */
  readonly restartNeededFor: readonly string[];
}

export function createAdminServer(sources: AdminSources): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    // Error answers only: the admin endpoints' own bodies have no use for an id.
    const fail = (error: ProxyError): void => sendProxyError(res, error, requestIdFrom(req.headers));
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(new ProxyError('METHOD_NOT_ALLOWED', 'admin endpoints are read-only'));
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz':
        return readiness(res, sources);
      case '/status':
        return json(res, 200, {
          version: sources.version,
          uptimeSeconds: Math.round((Date.now() - sources.startedAt) / 1000),
          draining: sources.isDraining(),
          config: sources.config(),
          upstreams: sources.statuses(),
        });
      case '/metrics':
        return void sources.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': sources.registry.contentType });
            res.end(text);
          },
          () => fail(new ProxyError('INTERNAL', 'metrics collection failed')),
        );
      default:
        return fail(new ProxyError('ROUTE_NOT_FOUND', 'admin endpoints: /healthz /readyz /metrics /status'));
    }
  });
}

function readiness(res: ServerResponse, sources: AdminSources): void {
  if (sources.isDraining()) return json(res, 503, { ready: false, draining: true, upstreams: {} });
  const notReady: Record<string, { state: string; reason: string | undefined }> = {};
  const warnings: Record<string, string> = {};
  for (const status of sources.statuses()) {
    if (status.state !== 'ok') notReady[status.upstream] = { state: status.state, reason: status.reason };
    // Still serving, but the newest token pair exists only in this process until the store takes it.
    if (status.storeWritePending)
      warnings[status.upstream] = 'the current token pair is not in the token store yet; the write is being retried';
  }
  const ready = Object.keys(notReady).length === 0;
  json(res, ready ? 200 : 503, { ready, notReady, ...(Object.keys(warnings).length > 0 ? { warnings } : {}) });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
