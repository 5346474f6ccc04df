/**
 * Dead credentials: a spent or unknown refresh token stops refreshing and says so
 * loudly (readiness, metric, error log, 503 CREDENTIAL_DEAD), and is never sent again. Apiax with a
 * username and password revives itself through the password grant.
 */
import { describe, expect, it } from 'vitest';
import type { FakeProvider, FakeProviderOptions, ProviderKind } from '../helpers/fake-provider.js';
import { eventually } from '../helpers/start-proxy.js';
import { CLIENT_SECRET, metricsText, readyz, sample, setup, tokenForms } from './token-fixtures.js';

interface DeadCase {
  label: string;
  kind: ProviderKind;
  options?: Omit<FakeProviderOptions, 'kind'>;
  /** The seed the proxy is given: unknown to the provider, or already spent by another client. */
  seed: (fake: FakeProvider) => Promise<string>;
}

const unknownSeed = async (fake: FakeProvider) => `${fake.kind}-rt-never-issued-0000`;

/** Redeems a fresh seed directly at the token endpoint, as another client holding the same token would. */
async function spentSeed(fake: FakeProvider): Promise<string> {
  const seed = fake.issueRefreshToken();
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: seed });
  if (fake.kind === 'v3') Object.assign(headers, { 'x-ibm-client-id': 'client-id', 'x-ibm-client-secret': CLIENT_SECRET });
  if (fake.kind === 'collaborate') {
    form.set('client_id', 'client-id');
    form.set('client_secret', CLIENT_SECRET);
  }
  if (fake.kind === 'apiax') form.set('client_id', 'integration-api');
  const response = await fetch(fake.tokenUrl, { method: 'POST', headers, body: form.toString() });
  if (response.status !== 200) throw new Error(`could not spend the seed: ${response.status}`);
  return seed;
}

const deadCases: DeadCase[] = [
  { label: 'apiax: unknown refresh token (400 invalid_grant)', kind: 'apiax', seed: unknownSeed },
  { label: 'apiax: spent refresh token (Keycloak reuse detection)', kind: 'apiax', seed: spentSeed },
  { label: 'v3: spent refresh token (400 error envelope)', kind: 'v3', seed: spentSeed },
  { label: 'collaborate: unknown refresh token (JSON invalid_grant)', kind: 'collaborate', seed: unknownSeed },
  { label: 'collaborate: spent refresh token (XML invalid_grant)', kind: 'collaborate', options: { format: 'xml' }, seed: spentSeed },
];

describe('a dead credential', () => {
  for (const { label, kind, options, seed } of deadCases) {
    it(label, async () => {
      let callsBeforeProxy = 0;
      const { fake, proxy, call } = await setup(kind, {
        providerOptions: options ?? {},
        seedFrom: async (fake) => {
          const made = await seed(fake);
          callsBeforeProxy = fake.counters.tokenCalls;
          return made;
        },
      });

      await eventually(
        async () => (await readyz(proxy)).body.notReady[kind]?.state === 'credential_dead',
        5000,
        'the credential to be declared dead',
      );
      const ready = await readyz(proxy);
      expect(ready.status).toBe(503);
      expect(ready.body.notReady[kind]?.reason).toMatch(/a new refresh token is needed: .*seed/);
      expect(fake.counters.invalidGrants).toBe(1);

      const response = await call('/3/sites');
      expect(response.status).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
      expect(body.error.code).toBe('CREDENTIAL_DEAD');
      expect(body.error.message).toContain(kind);
      expect(body.error.message).toMatch(/a new refresh token is needed: .*seed/);
      expect(body.error.requestId).toBeTruthy();

      expect(sample(await metricsText(proxy), 'oauth_sidecar_credential_dead', { upstream: kind })).toBe(1);
      const errorLines = proxy.logs.filter((line) => line.level === 'error' && line.event === 'credential_dead');
      expect(errorLines).toHaveLength(1);
      expect(String(errorLines[0]?.msg)).toContain(kind);

      // Refreshing stopped: more requests and some time bring no further token call.
      const callsAtDeath = fake.counters.tokenCalls;
      expect(callsAtDeath - callsBeforeProxy).toBe(1);
      for (let i = 0; i < 5; i++) expect((await call(`/again/${i}`)).status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(fake.counters.tokenCalls).toBe(callsAtDeath);
      expect(fake.counters.apiCalls).toBe(0);
    });
  }

  it('apiax with a username and password configured recovers through the password grant', async () => {
    const { fake, proxy, call } = await setup('apiax', { seed: 'apiax-rt-never-issued-0000', auth: 'username: user\npassword: pass' });
    const response = await call('/3/sites');
    expect(response.status).toBe(200);
    expect(tokenForms(fake).map((form) => form.get('grant_type'))).toEqual(['refresh_token', 'password']);
    const passwordForm = tokenForms(fake)[1];
    expect(passwordForm?.get('client_id')).toBe('integration-api');
    expect(passwordForm?.get('username')).toBe('user');
    expect((await readyz(proxy)).status).toBe(200);
    expect(sample(await metricsText(proxy), 'oauth_sidecar_credential_dead', { upstream: 'apiax' })).toBe(0);

    // The password grant's refresh token is the one used from now on.
    fake.expireAccessTokens();
    expect((await call('/3/sites')).status).toBe(200);
    const third = tokenForms(fake)[2];
    expect(third?.get('grant_type')).toBe('refresh_token');
    expect(third?.get('refresh_token')).toMatch(/^apiax-rt-/);
    expect(third?.get('refresh_token')).not.toBe('apiax-rt-never-issued-0000');
    expect(fake.counters.reuseAttempts).toBe(0);
  });
});
