/** `login <upstream>`: the first token through a browser (authorization code) or the password grant. */
import type { Config } from '../../config/types.js';
import { UsageError } from '../../errors.js';
import { defineCommand } from '../command-spec.js';
import { runLogin } from '../login.js';
import { configOption, configPath, withConfig } from './config-option.js';

interface LoginArgs {
  readonly configPath: string;
  readonly upstream: string;
  readonly listen: string | undefined;
  readonly redirectUri: string | undefined;
  readonly timeoutSeconds: number;
  readonly force: boolean;
}

export const loginCommand = defineCommand({
  name: 'login',
  summary: 'the first token: a browser login (Collaborate, v3) or the password grant (Apiax)',
  options: {
    config: configOption,
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      needs: 'a loopback address HOST:PORT',
      description: 'the address of the one-shot callback listener, on loopback',
      defaultText: '127.0.0.1:0, a free port',
    },
    'redirect-uri': {
      type: 'string',
      value: 'URL',
      needs: 'a URL',
      description: 'the redirect URI registered with the provider',
      defaultText: 'http://<listen>/callback',
    },
    timeout: {
      type: 'string',
      value: 'SECONDS',
      needs: 'a number of seconds',
      default: '300',
      description: "how long to wait for the browser's redirect",
    },
    force: { type: 'boolean', default: false, description: 'replace a live record (one that still holds usable tokens)' },
  },
  operand: { name: '<upstream>', needs: 'one upstream name' },
  description: () => `Collaborate and v3 have no client-credentials grant: a person authorizes once in a browser. login
starts a one-shot callback listener on loopback, prints the authorize URL built from the preset (or
auth.authorizeUrl, with auth.authorizeParams added; prompt=consent when auth.scope has
offline_access), waits for the redirect, exchanges the code at the token endpoint (with the PKCE
verifier) and writes the tokens to the configured store as the next generation. Apiax (and oauth2)
without auth.authorizeUrl use the password grant from auth.username/auth.password instead.

The code is accepted only with this login's state (or, for Collaborate, which never echoes state,
the PKCE verifier binds it to this login; a code stolen from another login cannot be exchanged). A
redirect with a wrong state, or none where the provider echoes it, is answered 400 and ignored, and
login keeps waiting for its own. An answer without a refresh token is refused and nothing is
stored (for OpenID Connect, ask for offline_access). A live record is replaced only with --force,
checked before the browser step. The client secret and password come from the config,
never from the command line. Prints only fingerprints.`,
  exitStatus:
    '0 when the tokens are stored, 1 otherwise (a live record without --force, no redirect in time, a refused grant, no refresh token, the store)',
  interpret: (values, operands, env): LoginArgs => {
    const timeoutSeconds = Number(values.timeout);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout takes a number of seconds');
    return {
      configPath: configPath(values.config, env),
      upstream: operands[0] ?? '',
      listen: values.listen,
      redirectUri: values['redirect-uri'],
      timeoutSeconds,
      force: values.force,
    };
  },
  run: (args) => withConfig(args.configPath, (config) => login(config, args)),
});

async function login(config: Config, args: LoginArgs): Promise<number> {
  try {
    const line = await runLogin(config, {
      upstream: args.upstream,
      out: process.stderr,
      ...(args.listen ? { listen: args.listen } : {}),
      ...(args.redirectUri ? { redirectUri: args.redirectUri } : {}),
      timeoutMs: args.timeoutSeconds * 1000,
      force: args.force,
    });
    process.stdout.write(`${line}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
