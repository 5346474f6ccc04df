/**
 * A token client whose answers the test gives one by one, for unit tests of the token core: each token
 * request waits until the test answers it (with tokens or a classified error), so a test can hold a
 * refresh "in flight" across any fault it likes. End-to-end behaviour against real HTTP token endpoints
 * is covered by the integration tests with the fake providers.
 */
import { TokenEndpointError } from '../../src/errors.js';
import type { TokenClient, TokenGrant } from '../../src/tokens/providers/oauth2-client.js';
import type { TokenResponse } from '../../src/tokens/providers/parse-token-response.js';
import type { FakeClock } from './fake-clock.js';

export interface PendingTokenRequest {
  readonly grant: TokenGrant;
  readonly sentAt: number;
  succeed(lifetimeMs?: number): TokenResponse;
  /** The provider processed the request and refused it (or a gateway behind it failed after it did). */
  fail(error: TokenEndpointError): void;
  /** Something in front of the provider (a firewall, a redirect) answered: the refresh token was never seen. */
  failUnseen(error: TokenEndpointError): void;
}

export class ScriptedTokenClient implements TokenClient {
  readonly requests: PendingTokenRequest[] = [];
  /** Refresh tokens presented more than once: a one-time token spent twice. */
  readonly reused: string[] = [];
  readonly #clock: FakeClock;
  readonly #spent = new Set<string>();
  #issued = 0;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  requestToken(grant: TokenGrant): Promise<TokenResponse> {
    const refreshToken = grant.type === 'refresh_token' ? grant.refreshToken : undefined;
    const reuse = refreshToken !== undefined && this.#spent.has(refreshToken);
    if (refreshToken !== undefined) {
      if (reuse) this.reused.push(refreshToken);
      this.#spent.add(refreshToken);
    }
    return new Promise((resolve, reject) => {
      this.requests.push({
        grant,
        sentAt: this.#clock.now(),
        succeed: (lifetimeMs = 300_000) => {
          this.#issued += 1;
          const tokens: TokenResponse = {
            accessToken: `at-${this.#issued}`,
            refreshToken: `rt-${this.#issued}`,
            accessTokenExpiresAt: this.#clock.now() + lifetimeMs,
            refreshTokenExpiresAt: undefined,
            tokenType: 'Bearer',
          };
          resolve(tokens);
          return tokens;
        },
        fail: reject,
        failUnseen: (error) => {
          // The provider never saw this request: it neither spent the token nor counts as a reuse.
          if (refreshToken !== undefined) {
            if (reuse) this.reused.splice(this.reused.lastIndexOf(refreshToken), 1);
            else this.#spent.delete(refreshToken);
          }
          reject(error);
        },
      });
    });
  }

  /** The newest request not answered yet. */
  get last(): PendingTokenRequest {
    const last = this.requests.at(-1);
    if (!last) throw new Error('no token request was sent');
    return last;
  }

  close = async (): Promise<void> => {};
}

export const invalidGrant = (): TokenEndpointError =>
  new TokenEndpointError('credential_dead', 'token endpoint answered HTTP 400 (invalid_grant: Token is not active)', {
    httpStatus: 400,
    providerCode: 'invalid_grant',
  });
export const wafPage = (): TokenEndpointError =>
  new TokenEndpointError('transient', 'token endpoint answered HTTP 403', { httpStatus: 403 });
export const timedOut = (): TokenEndpointError =>
  new TokenEndpointError('transient', 'token request failed: timed out', { grantMayBeSpent: true });
