/**
 * Builds how one peer (an upstream target or a token endpoint) is reached: its TLS settings and its egress
 * proxy. The proxy decision is made here, once, from the config and the environment (HTTPS_PROXY, NO_PROXY…),
 * so that `check` can print it and the request path never looks at the environment.
 */
import { resolve } from 'node:path';
import { envProxyFor } from '../net/env-proxy.js';
import type { RawProxy, RawTls } from './schema.js';
import { Secret } from './secret.js';
import type { EgressConfig, ProxyRoute, TlsConfig } from './types.js';

export interface EgressInput {
  /** The peer's URL (target or token URL). */
  readonly url: string;
  /** Where its settings live: "upstreams.apiax" or "upstreams.apiax.auth". */
  readonly setting: string;
  readonly tls: { readonly raw: RawTls; readonly setting: string } | undefined;
  readonly proxy: { readonly raw: RawProxy; readonly setting: string } | undefined;
  readonly baseDir: string;
  readonly env: NodeJS.ProcessEnv;
}

export function buildEgress(input: EgressInput, problems: string[]): EgressConfig {
  return {
    setting: input.setting,
    proxy: input.proxy ? configuredProxy(input.proxy.raw, input.proxy.setting, problems) : environmentProxy(input, problems),
    // A plain http:// peer has no TLS: its share of the upstream's tls section would only be read for nothing.
    tls: input.tls && new URL(input.url).protocol === 'https:' ? buildTls(input.tls.raw, input.tls.setting, input.baseDir) : undefined,
  };
}

function buildTls(raw: RawTls, setting: string, baseDir: string): TlsConfig {
  const path = (file: string | undefined) => (file === undefined ? undefined : resolve(baseDir, file));
  return {
    setting,
    caFile: path(raw.caFile),
    certFile: path(raw.certFile),
    keyFile: path(raw.keyFile),
    passphrase: raw.passphrase === undefined || raw.passphrase === '' ? undefined : new Secret(raw.passphrase),
    servername: raw.servername,
    minVersion: raw.minVersion,
    reloadIntervalMs: raw.reloadIntervalMs,
  };
}

function configuredProxy(raw: RawProxy, setting: string, problems: string[]): ProxyRoute {
  if (raw === 'direct') return { kind: 'direct', reason: `${setting}: direct` };
  const { url, username, password } = typeof raw === 'string' ? { url: raw, username: undefined, password: undefined } : raw;
  const parsed = new URL(url);
  if (parsed.username || parsed.password) {
    // A password in proxy.yaml ends up in ConfigMaps, diffs and `kubectl describe`; a file does not.
    problems.push(`${setting}: credentials in the proxy URL are not allowed; use ${setting}.username and ${setting}.passwordFile`);
  }
  if (password && !username) problems.push(`${setting}.password: needs ${setting}.username`);
  const authorization = username ? basicAuthorization(username, password ?? '') : undefined;
  return { kind: 'proxy', origin: parsed.origin, authorization, source: setting };
}

function environmentProxy(input: EgressInput, problems: string[]): ProxyRoute {
  let decision: ReturnType<typeof envProxyFor>;
  try {
    decision = envProxyFor(new URL(input.url), input.env);
  } catch (error) {
    problems.push(`${input.setting}: ${(error as Error).message}; or set ${input.setting}.proxy`);
    return { kind: 'direct', reason: 'unusable proxy variable' };
  }
  if (decision.kind === 'direct') return decision;
  const { url, variable } = decision;
  // Credentials in HTTPS_PROXY are the usual way to give them to every tool: take them, never print them.
  const authorization = url.username ? basicAuthorization(decodeURIComponent(url.username), decodeURIComponent(url.password)) : undefined;
  return { kind: 'proxy', origin: url.origin, authorization, source: variable };
}

/** RFC 7617 Basic credentials, as sent in Proxy-Authorization (RFC 9110 §11.7.1). */
function basicAuthorization(username: string, password: string): Secret {
  return new Secret(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
}
