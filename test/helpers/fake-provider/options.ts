import type { FakeProviderOptions, ProviderKind } from './types.js';

/** Options with every default filled in; checked once, then frozen. */
export interface ResolvedOptions {
  readonly kind: ProviderKind;
  readonly accessLifetimeSeconds: number;
  /** 0 = no expiry. */
  readonly refreshLifetimeSeconds: number;
  readonly format: 'json' | 'xml';
  readonly expiresInAs: 'number' | 'string' | 'epoch-seconds' | 'epoch-ms';
  readonly wrapped: boolean;
  readonly rotate: boolean;
  readonly killSessionOnReuse: boolean;
  readonly tokenDelayMs: number;
  readonly clientId: string;
  /** null = public client: no secret expected (apiax's default). */
  readonly clientSecret: string | null;
  readonly username: string;
  readonly password: string;
  readonly authorizationCodes: readonly string[];
}

const KINDS: readonly string[] = ['collaborate', 'apiax', 'v3', 'oauth2'];
const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'kind',
  'accessTokenLifetimeSeconds',
  'refreshTokenLifetimeSeconds',
  'format',
  'expiresInAs',
  'wrapped',
  'rotateRefreshTokens',
  'killSessionOnReuse',
  'tokenDelayMs',
  'clientId',
  'clientSecret',
  'username',
  'password',
  'authorizationCodes',
]);
const NUMERIC_KEYS = ['accessTokenLifetimeSeconds', 'refreshTokenLifetimeSeconds', 'tokenDelayMs'] as const;

/** A typo in a test's options would silently test the defaults, so unknown keys and bad values throw, all listed at once. */
function problemsIn(options: FakeProviderOptions): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) problems.push(`unknown option "${key}"`);
  }
  if (!KINDS.includes(options.kind)) problems.push(`kind must be one of ${KINDS.join(', ')}`);
  for (const key of NUMERIC_KEYS) {
    const value = options[key];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      problems.push(`${key} must be a finite number >= 0`);
    }
  }
  return problems;
}

export function resolveOptions(options: FakeProviderOptions): ResolvedOptions {
  const problems = problemsIn(options);
  if (problems.length > 0) throw new TypeError(`startFakeProvider: ${problems.join('; ')}`);
  const { kind } = options;
  const isApiax = kind === 'apiax';
  return Object.freeze({
    kind,
    accessLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 3600,
    refreshLifetimeSeconds: options.refreshTokenLifetimeSeconds ?? 0,
    format: options.format ?? 'json',
    expiresInAs: options.expiresInAs ?? 'number',
    wrapped: options.wrapped ?? false,
    rotate: options.rotateRefreshTokens ?? true,
    killSessionOnReuse: options.killSessionOnReuse ?? kind !== 'collaborate',
    tokenDelayMs: options.tokenDelayMs ?? 0,
    clientId: options.clientId ?? (isApiax ? 'integration-api' : 'client-id'),
    clientSecret: options.clientSecret === undefined ? (isApiax ? null : 'client-secret') : options.clientSecret,
    username: options.username ?? 'user',
    password: options.password ?? 'pass',
    authorizationCodes: Object.freeze([...(options.authorizationCodes ?? [])]),
  });
}
