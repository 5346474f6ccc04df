/** seed and login store refresh tokens: for an upstream on the client_credentials grant they refuse, and store nothing. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runLogin } from '../../src/cli/login.js';
import { seedRefreshToken } from '../../src/cli/seed.js';
import { parseConfig } from '../../src/config/load.js';

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-cc-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const storePath = join(dir, 'tokens.json');
  const config = parseConfig(
    `store: { type: file, path: ${storePath} }\nupstreams:\n  api:\n    target: https://api.example\n` +
      `    auth: { preset: oauth2, grant: client_credentials, tokenUrl: https://auth.example/token, clientId: id, clientSecret: s, authorizeUrl: https://auth.example/authorize }\n`,
    { env: {} },
  );
  return { config, storePath };
}

const NO_USE =
  /upstream api uses grant client_credentials: the proxy gets its tokens with auth\.clientId and auth\.clientSecret, so there is nothing to (seed|login)/;

describe('seed and login on a client_credentials upstream', () => {
  it('seed refuses', async () => {
    const { config, storePath } = workspace();
    await expect(seedRefreshToken(config, { upstream: 'api', refreshToken: 'rt', force: false })).rejects.toMatchObject({
      code: 'NO_REFRESH_TOKEN_GRANT',
      message: expect.stringMatching(NO_USE),
    });
    expect(existsSync(storePath)).toBe(false);
  });

  it('login refuses before printing any URL', async () => {
    const { config, storePath } = workspace();
    let printed = '';
    const out = new Writable({ write: (chunk, _encoding, done) => ((printed += String(chunk)), done()) });
    await expect(runLogin(config, { upstream: 'api', out, timeoutMs: 500 })).rejects.toMatchObject({ code: 'NO_REFRESH_TOKEN_GRANT' });
    expect(printed).toBe('');
    expect(existsSync(storePath)).toBe(false);
  });
});
