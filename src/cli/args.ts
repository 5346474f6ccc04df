/** Command-line parsing: `oauth-sidecar [command] [--config FILE] [--help]`. Secrets are never taken from argv. */

export const commands = ['serve', 'check', 'seed'] as const;
export type Command = (typeof commands)[number];

export interface ParsedArgs {
  command: Command;
  configPath: string;
  help: boolean;
  version: boolean;
  /** Positional arguments after the command (e.g. the upstream name for `seed`). */
  positional: string[];
  /** `seed --force`: replace a live record. */
  force: boolean;
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  let command: Command = 'serve';
  let configPath = env.OAUTH_SIDECAR_CONFIG || './proxy.yaml';
  let help = false;
  let version = false;
  let force = false;
  const positional: string[] = [];
  const rest = [...argv];
  if (rest[0] !== undefined && !rest[0].startsWith('-')) {
    const name = rest.shift() as string;
    if (name === 'help') help = true;
    else if ((commands as readonly string[]).includes(name)) command = name as Command;
    else throw new UsageError(`unknown command "${name}" (commands: ${commands.join(', ')})`);
  }
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--version' || arg === '-v') version = true;
    else if (arg === '--force' && command === 'seed') force = true;
    else if (!arg.startsWith('-') && command === 'seed') positional.push(arg);
    else if (arg === '--config' || arg === '-c') {
      const value = rest.shift();
      if (!value) throw new UsageError('--config needs a file path');
      configPath = value;
    } else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    // Only the name: `--client-secret=…` must not echo its value into a terminal or a log collector.
    else throw new UsageError(`unknown option "${arg.split('=')[0]}"`);
  }
  return { command, configPath, help, version, positional, force };
}

export const usage: Record<Command | 'main', string> = {
  main: `oauth-sidecar: an authenticating reverse proxy that attaches and refreshes OAuth bearer tokens

Usage:
  oauth-sidecar [serve] [--config FILE]   run the proxy (default command)
  oauth-sidecar check   [--config FILE]   validate the config and print a summary (no secrets)
  oauth-sidecar seed UPSTREAM [--force]   store a refresh token read from stdin (generation + 1)
  oauth-sidecar <command> --help          help for a command

The config file defaults to ./proxy.yaml, or $OAUTH_SIDECAR_CONFIG.
Secrets come from the config file, \${ENV} references or …File keys, never from the command line.`,
  serve: `oauth-sidecar serve [--config FILE]

Runs the proxy. Requests to http://<listen>/<upstream>/… are forwarded to the upstream's target with
the current bearer token attached. SIGTERM or SIGINT drains in-flight requests and exits 0; a second
signal exits at once. Exit 1 on a configuration error.`,
  check: `oauth-sidecar check [--config FILE]

Validates the config file and prints what would run: listeners, store, and per upstream its route,
target, preset and which credentials are present (never their values). Exit 0 when valid, 1 otherwise.`,
  seed: `oauth-sidecar seed UPSTREAM [--config FILE] [--force]

Reads a refresh token from standard input (never from the command line) and writes it to the configured
token store as the next generation of UPSTREAM's record. A running proxy that shares the store picks it
up and refreshes with it. Refuses to replace a live record (one that still holds usable tokens) unless
--force is given; a dead credential is replaced without --force. Prints only a fingerprint.

  printf '%s' "$REFRESH_TOKEN" | oauth-sidecar seed collaborate`,
};
