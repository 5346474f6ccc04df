/**
 * Issue 9: the token endpoint fails for a while without saying anything about the credential: a firewall
 * answers with an HTML 403 page, redirects to a login page, or the gateway answers 404/405/409 without an
 * OAuth body, or 5xx. None of these is the provider rejecting the refresh token (RFC 6749 §5.2: that is a
 * 400 with an OAuth `error`), so the credential must never be written off: requests get a 503
 * TOKEN_ENDPOINT_UNAVAILABLE with Retry-After while no token is usable, /readyz names the outage, and once
 * the endpoint is back the next retry refreshes with the same refresh token. The control case: a 400 with
 * `{"error":"invalid_grant"}` does write it off.
 *
 * One proxy over a file store; access tokens live 2 s (refreshed after 1 s), so "no usable token" comes
 * from the clock, not from the upstream.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { FakeProvider } from '../helpers/fake-provider.js';
import { waitUntil } from '../helpers/proxy-process.js';
import { configYaml, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import { ask, isClear503, summarize } from './fault-fixtures.js';
import { fileTop, provider, readyz, statusOf, tokenForms, upstreamYaml } from './token-fixtures.js';

const WAIT_MS = 1_000;
const ANSWER_BOUND_MS = WAIT_MS + 3_000;

interface Outage {
  readonly what: string;
  readonly status: number;
  readonly body: string;
  readonly headers: (fake: FakeProvider) => Record<string, string>;
}

const html = (title: string, text: string) =>
  `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`;

const OUTAGES: readonly Outage[] = [
  {
    what: 'a WAF answering an HTML 403 page',
    status: 403,
    body: html('403 Forbidden', 'Request blocked. Incident ID: 4711'),
    headers: () => ({ 'content-type': 'text/html; charset=utf-8' }),
  },
  {
    what: 'a 302 redirect to a login page',
    status: 302,
    body: '',
    headers: (fake) => ({ 'content-type': 'text/html', location: `${fake.origin}/sso/login?return=%2Ftoken` }),
  },
  {
    what: 'a 404 without an OAuth body',
    status: 404,
    body: html('404 Not Found', 'The requested URL was not found on this server.'),
    headers: () => ({ 'content-type': 'text/html' }),
  },
  {
    what: 'a 405 without an OAuth body',
    status: 405,
    body: 'Method Not Allowed',
    headers: () => ({ 'content-type': 'text/plain', allow: 'GET' }),
  },
  {
    what: 'a 409 in plain text',
    status: 409,
    body: 'Conflict: request could not be processed',
    headers: () => ({ 'content-type': 'text/plain' }),
  },
  {
    what: 'a 502 from the gateway',
    status: 502,
    body: html('502 Bad Gateway', 'The upstream server is not responding.'),
    headers: () => ({ 'content-type': 'text/html' }),
  },
  {
    what: 'a 503 with Retry-After',
    status: 503,
    body: 'Service Unavailable',
    headers: () => ({ 'content-type': 'text/plain', 'retry-after': '1' }),
  },
];

/** A proxy in front of an Apiax provider whose access tokens live 2 s; warmed up with one refresh. */
async function warmProxy(): Promise<{ fake: FakeProvider; proxy: RunningProxy; seed: string }> {
  const fake = await provider({ kind: 'apiax', accessTokenLifetimeSeconds: 2 });
  const seed = fake.issueRefreshToken();
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-outage-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const auth = [
    `tokenWaitTimeoutMs: ${WAIT_MS}`,
    'tokenRequestTimeoutMs: 2000',
    'earlyRefreshFraction: 0.5',
    'earlyRefreshSeconds: 0',
  ].join('\n');
  const proxy = await startProxy(configYaml(upstreamYaml(fake, { seed, auth }), fileTop(join(dir, 'tokens.json'))));
  expect(summarize(await ask(`${proxy.url}/apiax/warm`, 10_000))).toBe('200');
  return { fake, proxy, seed };
}

function events(proxy: RunningProxy, event: string): Record<string, unknown>[] {
  return proxy.logs.filter((line) => line.event === event);
}

function newestRefreshToken(fake: FakeProvider): string {
  const token = fake.issuedTokens.filter((t) => t.includes('-rt-')).at(-1);
  if (token === undefined) throw new Error('no refresh token issued yet');
  return token;
}

describe('the token endpoint fails without rejecting the credential', () => {
  it.each(OUTAGES)(
    '$what: never written off, 503 TOKEN_ENDPOINT_UNAVAILABLE meanwhile, then refreshed with the same refresh token',
    async (outage) => {
      const { fake, proxy, seed } = await warmProxy();
      fake.failNextTokenCalls(1_000, outage.status, outage.body, outage.headers(fake));
      const callsBefore = fake.counters.tokenCalls;
      const current = newestRefreshToken(fake);

      // The token runs out on the clock while every refresh meets the outage.
      await waitUntil('the access token to run out', async () => (await readyz(proxy)).status === 503, 10_000);
      expect(fake.counters.tokenCalls).toBeGreaterThan(callsBefore); // the outage was really met
      const { body } = await readyz(proxy);
      expect(body.notReady.apiax?.state).not.toBe('credential_dead');
      expect(body.notReady.apiax?.reason).toMatch(/token endpoint/i);
      expect(body.notReady.apiax?.reason).toContain(String(outage.status));

      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await ask(`${proxy.url}/apiax/during/${i}`, ANSWER_BOUND_MS));
      expect(answers.filter((answer) => !isClear503(answer, ['TOKEN_ENDPOINT_UNAVAILABLE'])).map(summarize)).toEqual([]);
      expect((await statusOf(proxy, 'apiax')).state).not.toBe('credential_dead');
      expect(events(proxy, 'credential_dead')).toEqual([]);
      expect(events(proxy, 'refresh_failed').length).toBeGreaterThan(0);

      // The endpoint is back: the next retry (on the clock or from a request) refreshes.
      fake.failNextTokenCalls(0, 200);
      await waitUntil(
        'a request to succeed again',
        async () => (await ask(`${proxy.url}/apiax/after`, ANSWER_BOUND_MS)).status === 200,
        30_000,
      );
      expect(fake.timesPresented(current)).toBe(1); // processed once, successfully: the outage spent nothing
      const presented = tokenForms(fake)
        .slice(callsBefore)
        .map((form) => form.get('refresh_token'));
      expect(presented.filter((token) => token === current).length).toBeGreaterThan(1); // tried during the outage, then refreshed
      expect(presented.slice(0, presented.indexOf(current) + 1).every((token) => token === current)).toBe(true);
      expect(fake.timesPresented(seed)).toBe(1); // no re-seed
      expect(fake.counters.reuseAttempts).toBe(0);
      expect(fake.counters.invalidGrants).toBe(0);
      expect(events(proxy, 'credential_dead')).toEqual([]);
      expect((await readyz(proxy)).status).toBe(200);
    },
    60_000,
  );

  it('control: a 400 with an OAuth invalid_grant body does write the credential off', async () => {
    const { fake, proxy } = await warmProxy();
    fake.failNextTokenCalls(1_000, 400, JSON.stringify({ error: 'invalid_grant', error_description: 'Token is not active' }), {
      'content-type': 'application/json',
    });
    await waitUntil('the credential to be written off', async () => (await statusOf(proxy, 'apiax')).state === 'credential_dead', 10_000);
    expect(events(proxy, 'credential_dead')).toHaveLength(1);
    const { status, body } = await readyz(proxy);
    expect(status).toBe(503);
    expect(body.notReady.apiax?.reason).toMatch(/invalid_grant/);
    await waitUntil('the access token to run out', async () => (await ask(`${proxy.url}/apiax/x`, ANSWER_BOUND_MS)).status === 503, 10_000);
    expect(summarize(await ask(`${proxy.url}/apiax/dead`, ANSWER_BOUND_MS))).toMatch(/^503 CREDENTIAL_DEAD/);
    // Written off once: no retry hammers the endpoint with the rejected token.
    const calls = fake.counters.tokenCalls;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(fake.counters.tokenCalls).toBe(calls);
  }, 30_000);
});
