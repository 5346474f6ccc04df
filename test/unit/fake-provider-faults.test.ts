/**
 * The fake provider's fault knobs for the token-core fault tests: arbitrary non-OAuth answers from the token endpoint (a WAF
 * page, a redirect), the gate that holds token requests until the test releases or discards them, and
 * how often a refresh token was presented.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.js';

async function start(): Promise<FakeProvider> {
  const provider = await startFakeProvider({ kind: 'apiax' });
  onTestFinished(() => provider.close());
  return provider;
}

function refresh(p: FakeProvider, refreshToken: string): Promise<Response> {
  return fetch(p.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'integration-api', grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    redirect: 'manual',
  });
}

describe('fake provider: fault knobs', () => {
  it('failNextTokenCalls answers with any status, content type, headers and body, spends nothing, and ends with count 0', async () => {
    const p = await start();
    const seed = p.issueRefreshToken();
    p.failNextTokenCalls(1, 403, '<html><body>Request blocked</body></html>', { 'content-type': 'text/html' });
    const blocked = await refresh(p, seed);
    expect(blocked.status).toBe(403);
    expect(blocked.headers.get('content-type')).toBe('text/html');
    expect(await blocked.text()).toContain('Request blocked');

    p.failNextTokenCalls(1, 302, '', { location: `${p.origin}/sso/login` });
    const redirected = await refresh(p, seed);
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe(`${p.origin}/sso/login`);

    p.failNextTokenCalls(5, 409, 'Conflict');
    expect((await refresh(p, seed)).status).toBe(409);
    p.failNextTokenCalls(0, 200);
    expect((await refresh(p, seed)).status).toBe(200); // the seed was never spent by the failed calls
    expect(p.timesPresented(seed)).toBe(1);
    expect(p.counters.tokenCalls).toBe(4);
  });

  it('holdTokenRequests: arrivals are reported at once; release() processes the held request', async () => {
    const p = await start();
    const seed = p.issueRefreshToken();
    const seen: string[] = [];
    const gate = p.holdTokenRequests((req) => seen.push(new URLSearchParams(req.body.toString()).get('grant_type') ?? ''));
    const answer = refresh(p, seed);
    await gate.waitForArrivals(1, 2_000);
    expect(seen).toEqual(['refresh_token']);
    expect(gate.arrivals()).toBe(1);
    expect(p.counters.refreshGrants).toBe(0); // held, not processed yet
    gate.release();
    expect((await answer).status).toBe(200);
    expect(p.counters.refreshGrants).toBe(1);
    // The gate is open now: the next request goes straight through (and finds the seed spent).
    expect((await refresh(p, seed)).status).toBe(400);
    expect(p.counters.reuseAttempts).toBe(1);
    expect(p.timesPresented(seed)).toBe(2);
  });

  it('holdTokenRequests: discard() drops the held request unanswered and unprocessed', async () => {
    const p = await start();
    const seed = p.issueRefreshToken();
    const gate = p.holdTokenRequests();
    const answer = refresh(p, seed).then(
      (response) => `status ${response.status}`,
      () => 'connection dropped',
    );
    await gate.waitForArrivals(1, 2_000);
    gate.discard();
    expect(await answer).toBe('connection dropped');
    expect(p.timesPresented(seed)).toBe(0);
    expect((await refresh(p, seed)).status).toBe(200); // still unspent
    expect(p.counters.reuseAttempts).toBe(0);
  });

  it('waitForArrivals rejects when too few requests arrive in time', async () => {
    const p = await start();
    const gate = p.holdTokenRequests();
    await expect(gate.waitForArrivals(1, 100)).rejects.toThrow(/0 of 1 token requests arrived within 100 ms/);
  });
});
