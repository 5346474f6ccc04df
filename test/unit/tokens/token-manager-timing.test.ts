/**
 * The time rules of one replica's token manager, with fake time: the first token, the early refresh,
 * the bounded wait of a request, and the backoff after an outage of the token endpoint.
 */
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../../src/errors.js';
import { timedOut, wafPage } from '../../helpers/scripted-token-client.js';
import { UPSTREAM, cluster } from './replicas.js';

describe('token manager timing (fake clock)', () => {
  it('fetches the first token at once from the seed, and refreshes at 80% of the lifetime, not a millisecond earlier', async () => {
    const { clock, endpoint, replica } = cluster();
    const a = await replica('a');
    await clock.advance(0);
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.last.grant).toEqual({ type: 'refresh_token', refreshToken: 'rt-seed' });
    endpoint.last.succeed(300_000);
    await clock.advance(0);
    expect(a.manager.state).toBe('valid');
    expect(a.manager.current()?.authorization).toBe('Bearer at-1');

    // 300 s lifetime: 80% is 240 s, 60 s before expiry is 240 s too.
    await clock.advance(239_999);
    expect(endpoint.requests).toHaveLength(1);
    await clock.advance(1);
    expect(endpoint.requests).toHaveLength(2);
    expect(endpoint.last.grant).toEqual({ type: 'refresh_token', refreshToken: 'rt-1' });
    // The current token keeps serving while the refresh runs.
    expect(a.manager.state).toBe('refreshing');
    expect(a.manager.current()?.generation).toBe(2);
    expect(a.events('token_state_invalid')).toEqual([]);
  });

  it('a request waits at most tokenWaitTimeoutMs for a refresh, then gets a 503 REFRESH_PENDING with Retry-After', async () => {
    const { clock, endpoint, replica } = cluster(['tokenWaitTimeoutMs: 3000']);
    const a = await replica('a');
    await clock.advance(0);
    expect(endpoint.requests).toHaveLength(1); // the token endpoint does not answer

    const waiting = a.manager.acquire().then(
      () => 'token',
      (error: unknown) => error,
    );
    await clock.advance(2_999);
    let settledEarly = false;
    void waiting.then(() => (settledEarly = true));
    await clock.advance(0);
    expect(settledEarly).toBe(false);
    await clock.advance(1);
    const error = (await waiting) as ProxyError;
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('REFRESH_PENDING');
    expect(error.status).toBe(503);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('a request that waits is answered as soon as the token arrives', async () => {
    const { clock, endpoint, replica } = cluster();
    const a = await replica('a');
    await clock.advance(0);
    const waiting = a.manager.acquire();
    await clock.advance(1_200);
    endpoint.last.succeed();
    await clock.advance(0);
    await expect(waiting).resolves.toMatchObject({ generation: 2, authorization: 'Bearer at-1' });
  });

  it('backs off exponentially (with jitter pinned at the middle) after an outage, and answers 503 TOKEN_ENDPOINT_UNAVAILABLE meanwhile', async () => {
    const { clock, endpoint, replica } = cluster();
    const a = await replica('a');
    await clock.advance(0);
    endpoint.last.fail(wafPage());
    await clock.advance(0);
    expect(a.manager.state).toBe('unavailable');
    const error = (await a.manager.acquire().catch((caught: unknown) => caught)) as ProxyError;
    expect(error.code).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    expect(error.message).toContain('HTTP 403');
    expect(error.retryAfterSeconds).toBe(1);

    // random 0.5 → 75% of the base: 750 ms, 1.5 s, 3 s, 6 s …
    const gaps: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const before = endpoint.requests.length;
      const sentAfter = await clock.advanceUntil(() => endpoint.requests.length > before, 120_000, 50);
      gaps.push(sentAfter);
      endpoint.last.fail(attempt % 2 === 0 ? wafPage() : timedOut());
      await clock.advance(0);
    }
    expect(gaps).toEqual([750, 1500, 3000, 6000]);
    // Never written off: only an OAuth verdict does that.
    expect(a.manager.state).toBe('unavailable');
    expect(a.events('credential_dead')).toEqual([]);
    // The retry after a timeout sends the same refresh token again: this replica's own mark, the one reuse.
    expect(endpoint.requests.every((request) => request.grant.type === 'refresh_token' && request.grant.refreshToken === 'rt-seed')).toBe(
      true,
    );

    const before = endpoint.requests.length;
    await clock.advanceUntil(() => endpoint.requests.length > before, 120_000, 50);
    endpoint.last.succeed();
    await clock.advance(0);
    expect(a.manager.state).toBe('valid');
    expect(a.manager.status().state).toBe('ok');
    expect(a.manager.status().generation).toBeGreaterThan(1);
  });

  it('status names the outage while no token is usable', async () => {
    const { clock, endpoint, replica } = cluster();
    const a = await replica('a');
    await clock.advance(0);
    endpoint.last.fail(wafPage());
    await clock.advance(0);
    const status = a.manager.status();
    expect(status.upstream).toBe(UPSTREAM);
    expect(status.state).not.toBe('credential_dead');
    expect(status.reason).toContain('HTTP 403');
  });
});
