/**
 * `oauth-sidecar status`: where each upstream's credential stands, from a running proxy's admin endpoint
 * or, when none answers, straight from the token store. Fingerprints only, never a token.
 */
import { inFlightMark } from '../tokens/describe-token-state.js';
import { firstTokenHint } from '../operator-hints.js';
import { httpUrl } from '../net/endpoint.js';
import type { Config, UpstreamConfig } from '../config/types.js';
import { CommandError } from '../errors.js';
import { createStore } from '../store/create-store.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import { fingerprint } from '../tokens/fingerprint.js';
import type { TokenStatus } from '../tokens/token-status.js';
import { describeStore } from '../store/describe-store.js';

/** Read straight from the store, a status lacks what only the proxy knows (last hour, refresh latency). */
export type UpstreamStatus = Partial<TokenStatus> & Pick<TokenStatus, 'upstream' | 'state'>;

export interface StatusReport {
  readonly source: string;
  readonly upstreams: readonly UpstreamStatus[];
}

/** Something to read reports from, again and again for `--watch`. */
export interface StatusSource {
  read(): Promise<StatusReport>;
  close(): Promise<void>;
}

const ADMIN_TIMEOUT_MS = 2000;

/**
 * The admin endpoint when it answers (within 2 s): `--admin URL`, else the config's admin listener.
 * Otherwise the store, kept open; an `--admin` that does not answer is an error rather than a fallback.
 */
export async function openStatusSource(config: Config, adminUrl: string | undefined): Promise<StatusSource> {
  const url = (adminUrl ?? configuredAdminUrl(config))?.replace(/\/$/, '');
  if (url) {
    const admin = adminStatusSource(url);
    const first = await admin.read().catch(() => undefined);
    if (first) return admin;
    if (adminUrl) throw new CommandError('ADMIN_UNREACHABLE', `no proxy answered at ${url}/status`);
  }
  if (config.store.type === 'memory')
    throw new CommandError('STORE_OUT_OF_REACH', 'no running proxy answered, and the memory store can only be read inside the proxy');
  return storeSource(config, await createStore(config.store));
}

/** One report, for a single `status` run. */
export async function collectStatus(config: Config, adminUrl: string | undefined): Promise<StatusReport> {
  const source = await openStatusSource(config, adminUrl);
  try {
    return await source.read();
  } finally {
    await source.close();
  }
}

function configuredAdminUrl(config: Config): string | undefined {
  if (!config.admin) return undefined;
  return httpUrl(config.admin);
}

/** Asks the proxy's admin endpoint on every read. */
export function adminStatusSource(adminUrl: string): StatusSource {
  const url = adminUrl.replace(/\/$/, '');
  return {
    async read() {
      const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) }).catch((error: unknown) => {
        throw new CommandError(
          'ADMIN_UNREACHABLE',
          `no proxy answered at ${url}/status (${error instanceof Error ? error.message : String(error)})`,
        );
      });
      if (!response.ok) throw new CommandError('ADMIN_UNREACHABLE', `the proxy at ${url}/status answered ${response.status}`);
      const body = (await response.json()) as { upstreams: TokenStatus[] };
      return { source: `running proxy at ${url}`, upstreams: body.upstreams };
    },
    close: () => Promise.resolve(),
  };
}

function storeSource(config: Config, store: TokenStore): StatusSource {
  const description = `token store (${describeStore(config.store)}); no running proxy answered`;
  return {
    async read() {
      const upstreams = [];
      for (const upstream of config.upstreams) upstreams.push(fromRecord(upstream, await store.read(upstream.name), store.description));
      return { source: description, upstreams };
    },
    close: () => store.close(),
  };
}

function fromRecord(upstream: UpstreamConfig, record: TokenRecord | undefined, store: string): UpstreamStatus {
  const now = Date.now();
  const expiresInSeconds = record?.accessTokenExpiresAt ? Math.round((record.accessTokenExpiresAt - now) / 1000) : undefined;
  const state: TokenStatus['state'] = !record
    ? 'needs_credentials'
    : record.dead
      ? 'credential_dead'
      : expiresInSeconds !== undefined && expiresInSeconds > 0
        ? 'ok'
        : 'expired';
  return {
    upstream: upstream.name,
    state,
    reason: record?.dead?.reason ?? (record ? undefined : noRecordReason(upstream)),
    generation: record?.generation ?? 0,
    accessTokenFingerprint: fingerprint(record?.accessToken),
    refreshTokenFingerprint: fingerprint(record?.refreshToken),
    expiresInSeconds,
    obtainedAt: record ? new Date(record.obtainedAt).toISOString() : undefined,
    refreshing: false,
    ...inFlightMark(record),
    store,
  };
}

function noRecordReason(upstream: UpstreamConfig): string {
  const missing = upstream.auth.missing;
  const fix = firstTokenHint(upstream.name, upstream.auth);
  return missing.length > 0 ? `missing ${missing.join(' and ')}; then ${fix}` : `no token yet: ${fix}`;
}
