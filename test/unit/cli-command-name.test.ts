/**
 * cliCommand (operator-hints.ts): help and hints name the program as the user runs it, `oauth-sidecar`
 * when installed, the bin script's path in a clone.
 */
import { describe, expect, it } from 'vitest';
import { cliCommand } from '../../src/operator-hints.js';

describe('cliCommand', () => {
  it.each([
    // npm links the bin as `oauth-sidecar` (global install, node_modules/.bin, npx).
    ['/usr/local/bin/oauth-sidecar', '/home/ops', 'oauth-sidecar'],
    ['/srv/app/node_modules/.bin/oauth-sidecar', '/srv/app', 'oauth-sidecar'],
    // In a clone: the script, as a path that works from where the user is.
    ['/work/clone/bin/oauth-sidecar.js', '/work/clone', './bin/oauth-sidecar.js'],
    ['/work/clone/bin/oauth-sidecar.js', '/work/clone/bin', './oauth-sidecar.js'],
    ['/work/clone/bin/oauth-sidecar.js', '/tmp', '/work/clone/bin/oauth-sidecar.js'],
    ['/work/clone/bin/oauth-sidecar.js', '/work/clone/docs', '/work/clone/bin/oauth-sidecar.js'],
    // Not the bin script (a test runner, node -e): the command's name.
    ['/work/clone/node_modules/vitest/vitest.mjs', '/work/clone', 'oauth-sidecar'],
    [undefined, '/work/clone', 'oauth-sidecar'],
  ])('%s from %s: %s', (script, cwd, expected) => {
    expect(cliCommand(script, cwd)).toBe(expected);
  });
});

describe('cliCommand where the installation names the command', () => {
  it('uses $OAUTH_SIDECAR_COMMAND (the image puts the bin on PATH and sets it)', () => {
    expect(cliCommand('/app/bin/oauth-sidecar.js', '/app', 'oauth-sidecar')).toBe('oauth-sidecar');
    expect(cliCommand('/app/bin/oauth-sidecar.js', '/app', undefined)).toBe('./bin/oauth-sidecar.js');
  });
});
