import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/run-cli.js';

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

function configFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-login-cli-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'proxy.yaml');
  writeFileSync(
    path,
    `store: { type: file, path: ./tokens.json }
upstreams:
  v3:
    target: https://api.nordeaopenbanking.com
    auth: { preset: v3, tokenUrl: "https://api.nordeaopenbanking.com/v3/authorize/token", clientId: cli-client, clientSecret: Cs-9dKq2 }
  apiax:
    target: https://api.apiax.io
    auth: { preset: apiax, tokenUrl: https://auth.apiax.io/token }
`,
  );
  return path;
}

describe('oauth-sidecar login (the CLI wiring)', () => {
  it('prints the authorize URL, waits for the redirect, and times out cleanly', async () => {
    const result = await runCli(['login', 'v3', '--config', configFile(), '--timeout', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/https:\/\/api\.nordeaopenbanking\.com\/v3\/authorize\?\S*client_id=cli-client/);
    expect(result.stderr).toContain('no redirect arrived');
    expect(result.stdout + result.stderr).not.toContain('Cs-9dKq2');
  });

  it('explains the password grant for apiax without credentials, and wants exactly one upstream', async () => {
    const apiax = await runCli(['login', 'apiax', '--config', configFile()]);
    expect(apiax.code).toBe(1);
    expect(apiax.stderr).toMatch(/password/);
    const none = await runCli(['login', '--config', configFile()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('login takes one upstream name');
  });
});

describe('oauth-sidecar login --help', () => {
  it('states the state rule (and the Collaborate exception), the refresh-token rule and --force', async () => {
    const help = await runCli(['login', '--help']);
    expect(help.code).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' ');
    expect(text).toContain(
      "The code is accepted only with this login's state (or, for Collaborate, which never echoes state, the PKCE verifier binds it to this login; a code stolen from another login cannot be exchanged).",
    );
    expect(text).toContain('An answer without a refresh token is refused and nothing is stored');
    expect(text).toContain('--force replace a live record');
  });
});
