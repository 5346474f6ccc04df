/**
 * Shared set-up for the token, replay, persistence and observability integration tests: a fake provider
 * and the real proxy in front of it, both on port 0, both cleaned up when the test ends.
 */
import { request as httpRequest } from 'node:http';
import { onTestFinished } from 'vitest';
import { startFakeProvider, type FakeProvider, type FakeProviderOptions, type ProviderKind } from '../helpers/fake-provider.js';
import { configYaml, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import type { TokenStatus } from '../../src/tokens/token-status.js';

export const CLIENT_SECRET = 'client-secret-5c1e7a9f';

export async function provider(options: FakeProviderOptions): Promise<FakeProvider> {
  const fake = await startFakeProvider({ ...(options.kind === 'apiax' ? {} : { clientSecret: CLIENT_SECRET }), ...options });
  onTestFinished(() => fake.close());
  return fake;
}

export interface UpstreamOptions {
  name?: string;
  /** Seed refresh token; omitted when null. */
  seed: string | null;
  /** Extra lines under `auth:` (unindented YAML). */
  auth?: string;
  /** Extra lines under the upstream (unindented YAML). */
  upstream?: string;
  tokenUrl?: string;
}

/** The `upstreams:` body for one upstream in front of `fake`, with the preset's credentials. */
export function upstreamYaml(fake: FakeProvider, options: UpstreamOptions): string {
  const name = options.name ?? fake.kind;
  const credentials = fake.kind === 'apiax' ? [] : ['clientId: client-id', `clientSecret: ${CLIENT_SECRET}`];
  const auth = [
    `preset: ${fake.kind}`,
    `tokenUrl: ${options.tokenUrl ?? fake.tokenUrl}`,
    ...credentials,
    ...(options.seed === null ? [] : [`refreshToken: ${options.seed}`]),
    ...lines(options.auth),
  ];
  return [
    `${name}:`,
    `  target: ${fake.apiBaseUrl}`,
    ...lines(options.upstream).map((l) => `  ${l}`),
    '  auth:',
    ...auth.map((l) => `    ${l}`),
  ].join('\n');
}

function lines(text: string | undefined): string[] {
  return text ? text.split('\n').filter((line) => line.trim() !== '') : [];
}

export const MEMORY_TOP = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\ndrainTimeoutMs: 5000\n';

export function fileTop(path: string): string {
  return `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: file, path: ${path} }\ndrainTimeoutMs: 5000\n`;
}

export interface Setup {
  fake: FakeProvider;
  proxy: RunningProxy;
  seed: string;
  name: string;
  /** GET (or any method) through the proxy at /<name><path>. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

export interface SetupOptions extends Omit<Partial<UpstreamOptions>, 'seed'> {
  /** Seed refresh token; a fresh valid one by default. */
  seed?: string;
  /** Makes the seed from the running provider (e.g. an already spent one). */
  seedFrom?: (fake: FakeProvider) => Promise<string>;
  providerOptions?: Omit<FakeProviderOptions, 'kind'>;
  top?: string;
}

/** A provider of `kind`, a fresh seed, and the proxy configured with it. */
export async function setup(kind: ProviderKind, options: SetupOptions = {}): Promise<Setup> {
  const fake = await provider({ kind, ...options.providerOptions });
  const seed = options.seedFrom ? await options.seedFrom(fake) : (options.seed ?? fake.issueRefreshToken());
  const name = options.name ?? kind;
  const proxy = await startProxy(configYaml(upstreamYaml(fake, { ...options, seed, name }), options.top ?? MEMORY_TOP));
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${proxy.url}/${name}${path}`, {
      ...init,
      headers: { accept: 'application/json', ...(init.headers as Record<string, string> | undefined) },
    });
  return { fake, proxy, seed, name, call };
}

export async function statusOf(proxy: RunningProxy, upstream: string): Promise<TokenStatus> {
  const body = (await (await fetch(`${proxy.adminUrl}/status`)).json()) as { upstreams: TokenStatus[] };
  const found = body.upstreams.find((status) => status.upstream === upstream);
  if (!found) throw new Error(`no status for ${upstream}`);
  return found;
}

export async function readyz(
  proxy: RunningProxy,
): Promise<{ status: number; body: { ready: boolean; notReady: Record<string, { state: string; reason?: string }> } }> {
  const response = await fetch(`${proxy.adminUrl}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as { ready: boolean; notReady: Record<string, { state: string; reason?: string }> },
  };
}

export async function metricsText(proxy: RunningProxy): Promise<string> {
  return (await fetch(`${proxy.adminUrl}/metrics`)).text();
}

/** The value of one Prometheus sample whose labels include all of `labels`; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const present = new Map([...(match[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) total = (total ?? 0) + Number(match[2]);
  }
  return total;
}

/** Access-log lines (msg "request") captured so far. */
export function accessLines(proxy: RunningProxy): Record<string, unknown>[] {
  return proxy.logs.filter((line) => line.msg === 'request');
}

/** Bearer tokens the upstream saw, in order. */
export function bearersSeen(fake: FakeProvider): string[] {
  return fake.apiRequests.map((req) => req.headers.authorization ?? '');
}

/** Form fields of every token request the provider received, in order. */
export function tokenForms(fake: FakeProvider): URLSearchParams[] {
  return fake.tokenRequests.map((req) => new URLSearchParams(req.body.toString('utf8')));
}

/** A raw request through node:http, for bodies fetch cannot shape (chunked, exact Content-Length). */
export function rawRequest(
  url: string,
  options: { method: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean },
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body && options.chunked) {
      // Two writes without Content-Length: node sends Transfer-Encoding: chunked.
      const half = Math.floor(options.body.length / 2);
      req.write(options.body.subarray(0, half));
      req.end(options.body.subarray(half));
    } else {
      req.end(options.body);
    }
  });
}
