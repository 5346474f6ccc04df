/** Command-line parsing: `oauth-sidecar [command] [--config FILE] [--help]`. Secrets are never taken from argv. */

export const commands = ['serve', 'check', 'seed', 'login', 'status'] as const;
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
  /** `login`: callback listener, redirect URI and how long to wait. */
  listen: string | undefined;
  redirectUri: string | undefined;
  timeoutSeconds: number | undefined;
  /** `status`: where a running proxy's admin listener is, and machine-readable output. */
  admin: string | undefined;
  json: boolean;
  /** `status --watch`: redraw every second until interrupted. */
  watch: boolean;
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  let command: Command = 'serve';
  let configPath = env.OAUTH_SIDECAR_CONFIG || './proxy.yaml';
  let help = false;
  let version = false;
  let force = false;
  let listen: string | undefined;
  let redirectUri: string | undefined;
  let timeoutSeconds: number | undefined;
  let admin: string | undefined;
  let json = false;
  let watch = false;
  const positional: string[] = [];
  const rest = [...argv];
  if (rest[0] !== undefined && !rest[0].startsWith('-')) {
    const name = rest.shift() as string;
    if (name === 'help') help = true;
    else if ((commands as readonly string[]).includes(name)) command = name as Command;
    else throw new UsageError(`unknown command "${name}" (commands: ${[...commands, 'inject-webhook', 'schema'].join(', ')})`);
  }
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--version' || arg === '-v') version = true;
    else if (arg === '--force' && command === 'seed') force = true;
    else if (!arg.startsWith('-') && (command === 'seed' || command === 'login')) positional.push(arg);
    else if (command === 'status' && arg === '--json') json = true;
    else if (command === 'status' && (arg === '--watch' || arg === '-w')) watch = true;
    else if (command === 'status' && arg === '--admin') {
      admin = rest.shift();
      if (!admin || !/^https?:\/\//.test(admin)) throw new UsageError('--admin takes the admin URL, e.g. http://127.0.0.1:9901');
    }
    else if (command === 'login' && (arg === '--listen' || arg === '--redirect-uri' || arg === '--timeout')) {
      const value = rest.shift();
      if (!value) throw new UsageError(`${arg} needs a value`);
      if (arg === '--listen') listen = value;
      else if (arg === '--redirect-uri') redirectUri = value;
      else {
        timeoutSeconds = Number(value);
        if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout takes a number of seconds');
      }
    }
    else if (arg === '--config' || arg === '-c') {
      const value = rest.shift();
      if (!value) throw new UsageError('--config needs a file path');
      configPath = value;
    } else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    // Only the name: `--client-secret=…` must not echo its value into a terminal or a log collector.
    else throw new UsageError(`unknown option "${arg.split('=')[0]}"`);
  }
  return { command, configPath, help, version, positional, force, listen, redirectUri, timeoutSeconds, admin, json, watch };
}

export const usage: Record<Command | 'main', string> = {
  main: `oauth-sidecar: an authenticating reverse proxy that attaches and refreshes OAuth bearer tokens

Usage:
  oauth-sidecar [serve] [--config FILE]   run the proxy (default command)
  oauth-sidecar check   [--config FILE]   validate the config and print a summary (no secrets)
  oauth-sidecar seed UPSTREAM [--force]   store a refresh token read from stdin (generation + 1)
  oauth-sidecar login UPSTREAM            get the first token through a browser (Collaborate, v3) or the password grant
  oauth-sidecar status [--watch] [--json]  each upstream's credential: state, expiry, refreshes, replays
  oauth-sidecar inject-webhook --tls-cert FILE --tls-key FILE   Kubernetes sidecar injection webhook
  oauth-sidecar schema                    print the JSON Schema of proxy.yaml (npm run schema writes proxy.schema.json)
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
  login: `oauth-sidecar login UPSTREAM [--config FILE] [--listen 127.0.0.1:PORT] [--redirect-uri URL] [--timeout SECONDS]

Collaborate and v3 have no client-credentials grant: a person authorizes once in a browser. login starts
a one-shot callback listener on loopback, prints the authorize URL built from the preset, waits for the
redirect (checking state where the provider returns it), exchanges the code at the token endpoint and
writes the tokens to the configured store as the next generation. Apiax (and oauth2) use the password
grant from auth.username/auth.password instead. Prints only fingerprints. The redirect URI must be the
one registered with the provider (default http://127.0.0.1:<listen port>/callback).`,
  status: `oauth-sidecar status [--config FILE] [--admin URL] [--json] [--watch]

Shows each upstream's credential: state (ok, refreshing, expired, needs credentials, credential dead),
token generation, time to expiry, last refresh (when, outcome, latency), refreshes and replays in the
last hour, token fingerprint (never a token) and the store it lives in. Asks the running proxy's admin
endpoint (--admin, default: the config's admin address); when none answers, reads the token store
directly, which knows no refresh latency and no counts. Refreshes and replays are those of the replica
asked. Exit 0 when every upstream is ok, 1 otherwise.

  --json    machine-readable output
  --watch   redraw every second until Ctrl-C (exit 0); with --json, one JSON line per second`,
  seed: `oauth-sidecar seed UPSTREAM [--config FILE] [--force]

Reads a refresh token from standard input (never from the command line) and writes it to the configured
token store as the next generation of UPSTREAM's record. A running proxy that shares the store picks it
up and refreshes with it. Refuses to replace a live record (one that still holds usable tokens) unless
--force is given; a dead credential is replaced without --force. Prints only a fingerprint.

  printf '%s' "$REFRESH_TOKEN" | oauth-sidecar seed collaborate`,
};
