/**
 * Turns proxy.yaml into a validated, frozen Config: YAML → ${ENV} interpolation → `…File` secrets →
 * strict schema → derived settings. Every problem is collected and reported together in one ConfigError.
 * This runs once at start-up; nothing on the request path reads configuration files.
 */
import { missingSettingHint } from '../operator-hints.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { presets } from './presets.js';
import { interpolateEnv } from './interpolate.js';
import { describeIssues, describeYamlError } from './issue-messages.js';
import { configSchema, upstreamSchema, type RawAuth, type RawConfig, type RawUpstream } from './schema.js';
import { Secret } from './secret.js';
import { isLoopback } from '../net/is-loopback.js';
import { parseEndpoint } from '../net/endpoint.js';
import type { AuthConfig, Config, StoreConfig, UpstreamConfig } from './types.js';
import { buildEgress } from './egress-settings.js';

/** Keys under `auth` that may instead be read from a file with the `…File` twin. */
const fileBackedAuthKeys = ['clientId', 'clientSecret', 'refreshToken', 'username', 'password', 'tppToken'] as const;
/** The same for the store section (Redis credentials and the record encryption key). */
const fileBackedStoreKeys = ['url', 'password', 'encryptionKey'] as const;

/** What building an upstream needs besides its section: relative paths and the proxy variables. */
interface BuildContext {
  readonly baseDir: string;
  readonly env: NodeJS.ProcessEnv;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

export function loadConfigFile(path: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([`${path}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfig(text, { ...options, source: resolve(path) });
}

export function parseConfig(text: string, options: LoadOptions & { source?: string } = {}): Config {
  const source = options.source ?? '<inline>';
  const baseDir = options.source ? dirname(options.source) : process.cwd();
  const problems: string[] = [];

  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  for (const error of document.errors) problems.push(describeYamlError(source, error));
  if (problems.length > 0) throw new ConfigError(problems);

  const env = options.env ?? process.env;
  const interpolated = interpolateEnv(document.toJS() ?? {}, env, problems);
  const secretFiles: string[] = [];
  resolveFileSecrets(interpolated, baseDir, { problems, secretFiles });

  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    problems.push(...describeIssues(parsed.error.issues, interpolated, configSchema));
    // Still report route and target problems, so that one run lists every problem in the file.
    checkValidUpstreams(interpolated, { baseDir, env }, problems);
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const config = {
    ...buildConfig(parsed.data, source, { baseDir, env }, problems),
    sha256: createHash('sha256').update(text).digest('hex'),
    secretFiles,
  };
  // A section both peers of an upstream share (its proxy) is checked for each: say each problem once.
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return deepFreeze(config);
}

/** Replaces each `xFile: path` under upstreams.*.auth, their tls and proxy sections, and store with `x: <file contents>`. */
function resolveFileSecrets(raw: unknown, baseDir: string, found: FoundSecrets): void {
  const upstreams = isRecord(raw) && isRecord(raw.upstreams) ? raw.upstreams : {};
  for (const [name, upstream] of Object.entries(upstreams)) {
    if (!isRecord(upstream)) continue;
    const where = `upstreams.${name}`;
    if (isRecord(upstream.auth)) {
      readFileTwins(upstream.auth, fileBackedAuthKeys, `${where}.auth`, baseDir, found);
      readPeerFileTwins(upstream.auth, `${where}.auth`, baseDir, found);
    }
    readPeerFileTwins(upstream, where, baseDir, found);
  }
  if (isRecord(raw) && isRecord(raw.store)) readFileTwins(raw.store, fileBackedStoreKeys, 'store', baseDir, found);
}

/** The TLS key passphrase and the egress proxy password of one peer. */
function readPeerFileTwins(section: Record<string, unknown>, where: string, baseDir: string, found: FoundSecrets): void {
  if (isRecord(section.tls)) readFileTwins(section.tls, ['passphrase'], `${where}.tls`, baseDir, found);
  if (isRecord(section.proxy)) readFileTwins(section.proxy, ['password'], `${where}.proxy`, baseDir, found);
}

/** Where readFileTwins reports: its problems, and the files it read (a reload watches them too). */
interface FoundSecrets {
  readonly problems: string[];
  readonly secretFiles: string[];
}

function readFileTwins(
  section: Record<string, unknown>,
  keys: readonly string[],
  path: string,
  baseDir: string,
  found: FoundSecrets,
): void {
  const { problems } = found;
  for (const key of keys) {
    const fileKey = `${key}File`;
    if (!(fileKey in section)) continue;
    const where = `${path}.${fileKey}`;
    const filePath = section[fileKey];
    delete section[fileKey];
    if (key in section && section[key] !== '' && section[key] !== undefined) {
      problems.push(`${where}: set either ${key} or ${fileKey}, not both`);
      continue;
    }
    if (typeof filePath !== 'string' || filePath === '') {
      problems.push(`${where}: expected a file path`);
      continue;
    }
    try {
      const absolute = resolve(baseDir, filePath);
      found.secretFiles.push(absolute);
      // Secrets mounted by Kubernetes or written by `echo` end with a newline that is not part of the value.
      section[key] = readFileSync(absolute, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      problems.push(`${where}: cannot read ${filePath} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

function buildConfig(raw: RawConfig, source: string, context: BuildContext, problems: string[]): Omit<Config, 'sha256' | 'secretFiles'> {
  const { baseDir } = context;
  const upstreams = Object.entries(raw.upstreams).map(([name, upstream]) => buildUpstream(name, upstream, context, problems));
  checkDuplicateRoutes(upstreams, problems);
  checkListenExposure(raw, problems);
  return {
    source,
    listen: parseEndpoint(raw.listen),
    admin: raw.admin === 'off' ? null : parseEndpoint(raw.admin),
    log: { level: raw.log.level, accessLog: raw.log.accessLog },
    store: buildStore(raw.store, baseDir, problems),
    drainTimeoutMs: raw.drainTimeoutMs,
    limits: { ...raw.limits },
    reload: { ...raw.reload },
    inboundAuth: { header: raw.inboundAuth.header.toLowerCase(), keys: raw.inboundAuth.keys },
    upstreams,
  };
}

/** Beyond loopback, anyone who reaches the port would spend the credentials: demand a client key or an explicit opt-out. */
function checkListenExposure(raw: RawConfig, problems: string[]): void {
  const { host } = parseEndpoint(raw.listen);
  if (isLoopback(host) || raw.inboundAuth.keys.length > 0 || raw.allowUnauthenticatedClients) return;
  problems.push(
    `listen: ${raw.listen} is reachable beyond loopback; add inboundAuth.keys (clients then send the key in ${raw.inboundAuth.header}) or set allowUnauthenticatedClients: true`,
  );
}

/** After a schema failure: the route and target checks of every upstream that is valid on its own. */
function checkValidUpstreams(raw: unknown, context: BuildContext, problems: string[]): void {
  const upstreams = isRecord(raw) && isRecord(raw.upstreams) ? raw.upstreams : {};
  const built = Object.entries(upstreams).flatMap(([name, upstream]) => {
    const parsed = upstreamSchema.safeParse(upstream);
    return parsed.success ? [buildUpstream(name, parsed.data, context, problems)] : [];
  });
  checkDuplicateRoutes(built, problems);
}

function checkDuplicateRoutes(upstreams: readonly UpstreamConfig[], problems: string[]): void {
  const seenPaths = new Map<string, string>();
  for (const upstream of upstreams) {
    const other = seenPaths.get(upstream.routePath);
    if (other) problems.push(`upstreams.${upstream.name}.path: ${upstream.routePath} is already routed to ${other}`);
    seenPaths.set(upstream.routePath, upstream.name);
  }
}

function buildStore(raw: RawConfig['store'], baseDir: string, problems: string[]): StoreConfig {
  if (raw.type === 'file') return { type: 'file', path: resolve(baseDir, raw.path) };
  if (raw.type === 'memory') return { type: 'memory' };
  return {
    type: 'redis',
    url: secret(raw.url),
    sentinels: raw.sentinels,
    name: raw.name,
    cluster: raw.cluster,
    username: nonEmpty(raw.username),
    password: secret(nonEmpty(raw.password)),
    keyPrefix: raw.keyPrefix,
    encryptionKey: raw.encryptionKey ? parseEncryptionKey(raw.encryptionKey, problems) : undefined,
    commandTimeoutMs: raw.commandTimeoutMs,
  };
}

/**
 * 32 bytes, written as exactly 64 hex digits (`openssl rand -hex 32`) or as the canonical padded base64 of
 * 32 bytes (`openssl rand -base64 32`: 43 characters and one "=", RFC 4648 §4). Buffer.from(…, 'base64')
 * skips characters outside the alphabet and ignores stray bits, so many 43-45 character texts decode to
 * 32 bytes: only the strict form is taken, and only when encoding the bytes again gives the same text.
 */
function parseEncryptionKey(text: string, problems: string[]): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) {
    const key = Buffer.from(trimmed, 'base64');
    if (key.length === 32 && key.toString('base64') === trimmed) return key;
  }
  problems.push('store.encryptionKey: must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -base64 32)');
  return undefined;
}

function buildUpstream(name: string, raw: RawUpstream, context: BuildContext, problems: string[]): UpstreamConfig {
  const target = new URL(raw.target);
  const where = `upstreams.${name}`;
  if (target.username || target.password) problems.push(`${where}.target: credentials in the URL are not allowed; use auth`);
  if (target.search || target.hash) problems.push(`${where}.target: must not have a query or fragment`);
  const routePath = stripTrailingSlash(raw.path ?? `/${name}`);
  if (routePath === '') problems.push(`${where}.path: must not be the root; every upstream needs its own prefix`);
  if (/(^|\/)\.\.?(\/|$)/.test(routePath)) problems.push(`${where}.path: must not contain . or .. segments`);
  const preset = presets[raw.auth.preset];
  return {
    name,
    routePath,
    targetOrigin: target.origin,
    targetBasePath: stripTrailingSlash(target.pathname),
    replayOn: new Set(raw.replayOn ?? preset.replayOn),
    stripHeaders: raw.stripHeaders.map((header) => header.toLowerCase()),
    maxReplayBodyBytes: raw.maxReplayBodyBytes,
    connectTimeoutMs: raw.connectTimeoutMs,
    headersTimeoutMs: raw.headersTimeoutMs,
    bodyIdleTimeoutMs: raw.bodyIdleTimeoutMs,
    maxConnections: raw.maxConnections,
    maxQueuedRequests: raw.maxQueuedRequests,
    queueTimeoutMs: raw.queueTimeoutMs,
    cookies: raw.cookies,
    websocket: { ...raw.websocket },
    egress: buildEgress(
      {
        url: raw.target,
        setting: where,
        tls: at(raw.tls, `${where}.tls`),
        proxy: at(raw.proxy, `${where}.proxy`),
        ...context,
      },
      problems,
    ),
    auth: buildAuth(name, raw, context, problems),
  };
}

function buildAuth(name: string, upstream: RawUpstream, context: BuildContext, problems: string[]): AuthConfig {
  const raw: RawAuth = upstream.auth;
  const where = `upstreams.${name}`;
  const preset = presets[raw.preset];
  const clientAuth = raw.clientAuth ?? preset.clientAuth;
  const clientId = nonEmpty(raw.clientId) ?? preset.defaultClientId;
  const clientSecret = nonEmpty(raw.clientSecret);
  const missing: string[] = [];
  if (!clientId && clientAuth !== 'none') missing.push(missingSettingHint(name, 'clientId'));
  // With client_credentials the secret is the credential, whatever the preset says about refresh tokens.
  const needsSecret = preset.needsClientSecret || raw.grant === 'client_credentials';
  if (!clientSecret && needsSecret && clientAuth !== 'none') {
    missing.push(missingSettingHint(name, 'clientSecret'));
  }
  if (raw.grant === 'client_credentials') checkClientCredentialsGrant(raw, clientAuth, `${where}.auth`, problems);
  return {
    preset: raw.preset,
    tokenUrl: raw.tokenUrl,
    clientId,
    clientSecret: secret(clientSecret),
    refreshToken: secret(nonEmpty(raw.refreshToken)),
    username: nonEmpty(raw.username),
    password: secret(nonEmpty(raw.password)),
    tppToken: secret(nonEmpty(raw.tppToken)),
    clientAuth,
    clientIdHeader: preset.clientIdHeader,
    clientSecretHeader: preset.clientSecretHeader,
    bodyEncoding: raw.bodyEncoding ?? preset.bodyEncoding,
    scope: nonEmpty(raw.scope),
    authorizeUrl: nonEmpty(raw.authorizeUrl),
    authorizeParams: { ...raw.authorizeParams },
    earlyRefreshFraction: raw.earlyRefreshFraction,
    earlyRefreshSeconds: raw.earlyRefreshSeconds,
    tokenRequestTimeoutMs: raw.tokenRequestTimeoutMs,
    tokenWaitTimeoutMs: raw.tokenWaitTimeoutMs,
    lockLeaseMs: raw.lockLeaseMs,
    inFlightMarkTtlMs: raw.inFlightMarkTtlMs,
    refreshWithoutLock: raw.refreshWithoutLock,
    grant: raw.grant,
    // The token endpoint usually belongs to the same API as the target: its TLS and proxy apply unless auth says otherwise.
    egress: buildEgress(
      {
        url: raw.tokenUrl,
        setting: `${where}.auth`,
        tls: at(raw.tls, `${where}.auth.tls`) ?? at(upstream.tls, `${where}.tls`),
        proxy: at(raw.proxy, `${where}.auth.proxy`) ?? at(upstream.proxy, `${where}.proxy`),
        ...context,
      },
      problems,
    ),
    missing,
  };
}

/**
 * grant client_credentials: only the generic oauth2 preset (the three named APIs issue refresh tokens and
 * offer no client_credentials grant), with the client authenticating, and no refresh-token settings that
 * would silently do nothing.
 */
function checkClientCredentialsGrant(raw: RawAuth, clientAuth: AuthConfig['clientAuth'], where: string, problems: string[]): void {
  if (raw.preset !== 'oauth2')
    problems.push(
      `${where}.grant: client_credentials works only with preset oauth2; ${raw.preset} issues refresh tokens and has no client_credentials grant (remove grant, or use preset oauth2 for another provider)`,
    );
  if (clientAuth === 'none')
    problems.push(
      `${where}.clientAuth: none cannot be used with grant client_credentials, where the client id and secret are the credential; use basic, body or headers`,
    );
  for (const setting of ['refreshToken', 'username', 'password'] as const)
    if (nonEmpty(raw[setting]) !== undefined)
      problems.push(`${where}.${setting}: has no use with grant client_credentials (tokens come from the client id and secret); remove it`);
}

/** A section with where it lives in proxy.yaml, or undefined when it is not set. */
function at<T>(raw: T | undefined, setting: string): { readonly raw: T; readonly setting: string } | undefined {
  return raw === undefined ? undefined : { raw, setting };
}

function stripTrailingSlash(path: string): string {
  return path.replace(/\/+$/, '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function secret(value: string | undefined): Secret | undefined {
  return value === undefined ? undefined : new Secret(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  // Secrets and Buffers (the encryption key) hide or cannot freeze their contents; they are not shared.
  if (value && typeof value === 'object' && !(value instanceof Secret) && !Buffer.isBuffer(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
