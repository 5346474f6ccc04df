import { describe, expect, it } from 'vitest';
import { configYaml, eventually, startProxy } from '../helpers/start-proxy.js';
import { provider, upstreamYaml } from './token-fixtures.js';

interface Readyz {
  notReady: Record<string, { state: string; reason: string }>;
}

describe('an upstream without credentials', () => {
  it('starts, says what is missing and how to fix it in readyz, and answers its requests with that hint', async () => {
    const apiax = await provider({ kind: 'apiax' });
    const collaborate = await provider({ kind: 'collaborate' });
    const proxy = await startProxy(
      configYaml(
        `${upstreamYaml(apiax, { seed: null })}\ncollaborate:\n  target: ${collaborate.apiBaseUrl}\n  auth: { preset: collaborate, tokenUrl: ${collaborate.tokenUrl}, clientId: "\${NO_SUCH_ID:-}", clientSecret: "\${NO_SUCH_SECRET:-}" }`,
      ),
    );
    let readyz: Readyz | undefined;
    await eventually(
      async () => {
        readyz = (await (await fetch(`${proxy.adminUrl}/readyz`)).json()) as Readyz;
        return readyz.notReady.apiax?.state === 'needs_credentials';
      },
      5000,
      'apiax to report needs_credentials',
    );
    expect(readyz?.notReady.apiax?.reason).toContain('oauth-sidecar seed apiax');
    expect(readyz?.notReady.collaborate?.state).toBe('needs_credentials');
    expect(readyz?.notReady.collaborate?.reason).toContain('export COLLABORATE_CLIENT_ID=');

    const response = await fetch(`${proxy.url}/collaborate/x`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NEEDS_CREDENTIALS');
    expect(body.error.message).toContain('COLLABORATE_CLIENT_ID');
    expect(collaborate.counters.tokenCalls + apiax.counters.tokenCalls).toBe(0);
  });
});
