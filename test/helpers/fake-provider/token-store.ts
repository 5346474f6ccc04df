import { randomBytes, randomUUID } from 'node:crypto';
import type { ProviderKind } from './types.js';

/** A login: every token minted from one grant chain belongs to it, so reuse detection can kill them all. */
export interface Session {
  readonly id: string;
  alive: boolean;
  /** Epoch ms; null = no expiry. Only used when refresh expiry is counted from the first login. */
  readonly refreshExpiresAt: number | null;
}

interface RefreshRecord {
  readonly session: Session;
  spent: boolean;
  /** Epoch ms; null = no expiry. */
  readonly expiresAt: number | null;
}

interface AccessRecord {
  readonly session: Session;
  expiresAt: number;
}

export interface IssuedPair {
  readonly session: Session;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the refresh token expires, as of now; null = no expiry. */
  readonly refreshExpiresIn: number | null;
}

export type GrantFailure = 'unknown' | 'spent' | 'expired' | 'session-dead' | 'bad-code';

export type GrantOutcome = { ok: true; pair: IssuedPair } | { ok: false; reason: GrantFailure };

export type AccessCheck = 'valid' | 'expired' | 'invalid';

export interface TokenStoreSettings {
  readonly kind: ProviderKind;
  readonly accessLifetimeSeconds: number;
  /** 0 = no expiry. */
  readonly refreshLifetimeSeconds: number;
  readonly rotate: boolean;
  readonly killSessionOnReuse: boolean;
  /**
   * Keycloak counts the refresh lifetime from the first login (SSO session max), and a v3 refresh token
   * lives as long as the consent; Collaborate's refresh token is "reset each time" and valid a year from
   * its own issue.
   */
  readonly refreshExpiry: 'per-token' | 'session';
  readonly authorizationCodes: readonly string[];
}

/** All token state of one fake provider; pure bookkeeping, no HTTP. */
export class TokenStore {
  readonly issued: string[] = [];
  private readonly access = new Map<string, AccessRecord>();
  private readonly refresh = new Map<string, RefreshRecord>();
  private readonly codes: Set<string>;

  constructor(private readonly settings: TokenStoreSettings) {
    this.codes = new Set(settings.authorizationCodes);
  }

  /** A seed: a refresh token in a new session, with no access token yet. */
  seedRefreshToken(): string {
    return this.mintRefresh(this.newSession());
  }

  /** Start a new session (authorization_code or password grant) and issue its first pair. */
  login(): IssuedPair {
    const session = this.newSession();
    return this.pair(session, this.mintRefresh(session));
  }

  /** client_credentials grant: an access token in a session of its own, and no refresh token. */
  issueAccessOnly(): string {
    return this.pair(this.newSession(), '').accessToken;
  }

  /** authorization_code grant: each configured code works exactly once. */
  redeemCode(code: string): GrantOutcome {
    if (!this.codes.delete(code)) return { ok: false, reason: 'bad-code' };
    return { ok: true, pair: this.login() };
  }

  /** refresh_token grant. A spent token is reported as 'spent' (after killing the session if so configured). */
  redeemRefresh(token: string): GrantOutcome {
    const rec = this.refresh.get(token);
    if (rec === undefined) return { ok: false, reason: 'unknown' };
    if (rec.spent) {
      if (this.settings.killSessionOnReuse) rec.session.alive = false;
      return { ok: false, reason: 'spent' };
    }
    if (!rec.session.alive) return { ok: false, reason: 'session-dead' };
    if (this.refreshExpired(rec)) return { ok: false, reason: 'expired' };
    if (!this.settings.rotate) return { ok: true, pair: this.pair(rec.session, token) };
    rec.spent = true;
    return { ok: true, pair: this.pair(rec.session, this.mintRefresh(rec.session)) };
  }

  checkAccess(token: string): AccessCheck {
    const rec = this.access.get(token);
    if (rec === undefined || !rec.session.alive) return 'invalid';
    return Date.now() < rec.expiresAt ? 'valid' : 'expired';
  }

  expireAllAccessTokens(): void {
    const past = Date.now() - 1;
    for (const rec of this.access.values()) rec.expiresAt = Math.min(rec.expiresAt, past);
  }

  private newSession(): Session {
    const lifetimeMs = this.settings.refreshLifetimeSeconds * 1000;
    const bySession = this.settings.refreshExpiry === 'session' && lifetimeMs > 0;
    return { id: randomUUID(), alive: true, refreshExpiresAt: bySession ? Date.now() + lifetimeMs : null };
  }

  private pair(session: Session, refreshToken: string): IssuedPair {
    const accessToken = this.mintToken('at');
    const expiresAt = Date.now() + this.settings.accessLifetimeSeconds * 1000;
    this.access.set(accessToken, { session, expiresAt });
    return { session, accessToken, refreshToken, refreshExpiresIn: this.refreshExpiresIn(refreshToken) };
  }

  private mintRefresh(session: Session): string {
    const token = this.mintToken('rt');
    const lifetimeMs = this.settings.refreshLifetimeSeconds * 1000;
    const perToken = this.settings.refreshExpiry === 'per-token' && lifetimeMs > 0;
    this.refresh.set(token, { session, spent: false, expiresAt: perToken ? Date.now() + lifetimeMs : null });
    return token;
  }

  private refreshDeadline(rec: RefreshRecord): number | null {
    return rec.expiresAt ?? rec.session.refreshExpiresAt;
  }

  private refreshExpired(rec: RefreshRecord): boolean {
    const deadline = this.refreshDeadline(rec);
    return deadline !== null && Date.now() >= deadline;
  }

  private refreshExpiresIn(token: string): number | null {
    const rec = this.refresh.get(token);
    const deadline = rec === undefined ? null : this.refreshDeadline(rec);
    return deadline === null ? null : Math.max(0, Math.round((deadline - Date.now()) / 1000));
  }

  /** Opaque, with a prefix naming provider and kind of token, so a leak is easy to grep for. */
  private mintToken(type: 'at' | 'rt'): string {
    const token = `${this.settings.kind}-${type}-${randomBytes(24).toString('base64url')}`;
    this.issued.push(token);
    return token;
  }
}
