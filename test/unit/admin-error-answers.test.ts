/**
 * The admin listener's error answers go through the one error writer: a registered code whose status is
 * the response's, a request id in the body and in X-Request-Id (the caller's own when it is safe).
 */
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createAdminServer, type AdminSources } from '../../src/admin/admin-server.js';
import { ErrorRegistry } from '../../src/errors.js';
import { proxyError, send } from '../helpers/raw-http.js';

async function startAdmin(registry: Pick<Registry, 'metrics' | 'contentType'> = new Registry()): Promise<string> {
  const sources: AdminSources = {
    registry: registry as Registry,
    statuses: () => [],
    isDraining: () => false,
    version: 'test',
    startedAt: Date.now(),
    config: () => ({
      source: '<inline>',
      sha256: '0'.repeat(64),
      loadedAt: new Date().toISOString(),
      reloads: { applied: 0, refused: 0 },
      restartNeededFor: [],
    }),
  };
  const server = createAdminServer(sources);
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The error body of `response`, with its code checked against the registry and the status. */
function registeredError(response: Awaited<ReturnType<typeof send>>): ReturnType<typeof proxyError> {
  const error = proxyError(response.body);
  expect(Object.keys(ErrorRegistry)).toContain(error.code);
  expect(ErrorRegistry[error.code as keyof typeof ErrorRegistry]).toMatchObject({ status: response.status });
  expect(response.headers['x-request-id']).toBe(error.requestId);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  return error;
}

describe('admin listener error answers', () => {
  it('404 and 405 carry a registered code and a request id, the caller’s own when it is safe', async () => {
    const url = await startAdmin();
    const unknown = await send(`${url}/nothing`, { headers: { 'x-request-id': 'admin-probe-1' } });
    expect(unknown.status).toBe(404);
    expect(registeredError(unknown)).toMatchObject({ code: 'ROUTE_NOT_FOUND', requestId: 'admin-probe-1' });

    const post = await send(`${url}/status`, { method: 'POST' });
    expect(post.status).toBe(405);
    const refused = registeredError(post);
    expect(refused.code).toBe('METHOD_NOT_ALLOWED');
    expect(refused.requestId).toMatch(/^[0-9a-f-]{36}$/);

    // An id that could inject into a log line or a header is replaced, not echoed.
    const unsafe = await send(`${url}/nothing`, { headers: { 'x-request-id': 'a b{"x":1}' } });
    expect(registeredError(unsafe).requestId).not.toBe('a b{"x":1}');
  });

  it('a failed metrics collection answers 500 INTERNAL through the same writer', async () => {
    const url = await startAdmin({
      metrics: () => Promise.reject(new Error('collector broke')),
      contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    });
    const response = await send(`${url}/metrics`);
    expect(response.status).toBe(500);
    expect(registeredError(response)).toMatchObject({ code: 'INTERNAL', message: 'metrics collection failed' });
  });
});
