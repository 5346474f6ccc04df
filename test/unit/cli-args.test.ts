/**
 * The command line of every command, parsed from the real command table: each option of each command
 * (long, short, `=value`, default), operands, --help/--version, and each kind of usage error. A test at
 * the end makes sure every option of the table is exercised here, so an option cannot be added or
 * dropped without this file noticing.
 */
import { describe, expect, it } from 'vitest';
import { parseCommandLine, selectCommand } from '../../src/cli/args.js';
import { commandTable } from '../../src/cli/command-table.js';
import { UsageError } from '../../src/errors.js';

/** What the command makes of `argv` (the whole command line, command name included), as its handler would get it. */
function interpret(argv: readonly string[], env: NodeJS.ProcessEnv = {}): { command: string; named: boolean; args: unknown } {
  const selection = selectCommand(commandTable, argv);
  if (selection.kind !== 'run') throw new Error(`expected a command to run, got ${selection.kind}`);
  const line = parseCommandLine(selection.command, selection.argv);
  return { command: selection.command.name, named: selection.named, args: selection.command.interpret(line, env) };
}

function usageError(argv: readonly string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    interpret(argv, env);
  } catch (error) {
    if (error instanceof UsageError) {
      expect(error.code).toBe('USAGE');
      return error.message;
    }
    throw error;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

const defaults = { configPath: './proxy.yaml' };

/** [command line, environment, what the handler gets]. Every option of the table appears in some line here. */
const runs: ReadonlyArray<readonly [readonly string[], NodeJS.ProcessEnv, unknown]> = [
  // serve, the default command; --config / -c / --config=, and $OAUTH_SIDECAR_CONFIG
  [[], {}, defaults],
  [[], { OAUTH_SIDECAR_CONFIG: '/etc/oauth-sidecar/proxy.yaml' }, { configPath: '/etc/oauth-sidecar/proxy.yaml' }],
  [['--config', 'a.yaml'], { OAUTH_SIDECAR_CONFIG: '/ignored.yaml' }, { configPath: 'a.yaml' }],
  [['serve', '-c', 'b.yaml'], {}, { configPath: 'b.yaml' }],
  [['serve', '--config=c.yaml'], {}, { configPath: 'c.yaml' }],
  [['serve', '--config', 'first.yaml', '--config', 'last.yaml'], {}, { configPath: 'last.yaml' }],
  // check
  [['check'], {}, defaults],
  [['check', '--config', 'x.yaml'], {}, { configPath: 'x.yaml' }],
  [['check', '-cy.yaml'], {}, { configPath: 'y.yaml' }],
  // seed <upstream> [--force]
  [['seed', 'apiax'], {}, { ...defaults, upstream: 'apiax', force: false }],
  [['seed', '--force', 'apiax', '--config', 'p.yaml'], {}, { configPath: 'p.yaml', upstream: 'apiax', force: true }],
  [['seed', 'apiax', '-c', 's.yaml'], {}, { configPath: 's.yaml', upstream: 'apiax', force: false }],
  [['seed', '--', '-odd-name'], {}, { ...defaults, upstream: '-odd-name', force: false }],
  // login <upstream> [--listen] [--redirect-uri] [--timeout] [--force]
  [['login', 'v3'], {}, { ...defaults, upstream: 'v3', listen: undefined, redirectUri: undefined, timeoutSeconds: 300, force: false }],
  [
    ['login', '-c', 'l.yaml', 'v3'],
    {},
    { configPath: 'l.yaml', upstream: 'v3', listen: undefined, redirectUri: undefined, timeoutSeconds: 300, force: false },
  ],
  [
    [
      'login',
      'v3',
      '--listen',
      '127.0.0.1:8765',
      '--redirect-uri',
      'http://localhost:8765/cb',
      '--timeout',
      '2.5',
      '--config',
      'l.yaml',
      '--force',
    ],
    {},
    {
      configPath: 'l.yaml',
      upstream: 'v3',
      listen: '127.0.0.1:8765',
      redirectUri: 'http://localhost:8765/cb',
      timeoutSeconds: 2.5,
      force: true,
    },
  ],
  // status [--admin URL] [--json] [--watch | -w]
  [['status'], {}, { ...defaults, admin: undefined, json: false, watch: false }],
  [['status', '--config', 's.yaml'], {}, { configPath: 's.yaml', admin: undefined, json: false, watch: false }],
  [
    ['status', '--watch', '--json', '--admin', 'http://127.0.0.1:9901'],
    {},
    { ...defaults, admin: 'http://127.0.0.1:9901', json: true, watch: true },
  ],
  [
    ['status', '-w', '--admin=https://proxy.internal:9901', '-c', 's.yaml'],
    {},
    { configPath: 's.yaml', admin: 'https://proxy.internal:9901', json: false, watch: true },
  ],
  // inject-webhook
  [
    ['inject-webhook', '--tls-cert', 'c.pem', '--tls-key=k.pem'],
    {},
    {
      certFile: 'c.pem',
      keyFile: 'k.pem',
      host: '0.0.0.0',
      port: 8443,
      image: 'oauth-sidecar:0.1.0',
      logLevel: 'info',
      tlsReloadSeconds: 10,
    },
  ],
  [
    [
      'inject-webhook',
      '--tls-cert',
      'c',
      '--tls-key',
      'k',
      '--listen',
      '[::1]:9443',
      '--image',
      'x:1',
      '--log-level',
      'debug',
      '--tls-reload-seconds',
      '0.5',
    ],
    { OAUTH_SIDECAR_IMAGE: 'ignored:2' },
    { certFile: 'c', keyFile: 'k', host: '::1', port: 9443, image: 'x:1', logLevel: 'debug', tlsReloadSeconds: 0.5 },
  ],
  [['inject-webhook', '--tls-cert', 'c', '--tls-key', 'k'], { OAUTH_SIDECAR_IMAGE: 'env:2' }, expect.objectContaining({ image: 'env:2' })],
  [
    ['inject-webhook', '--tls-cert', 'c', '--tls-key', 'k', '--tls-reload-seconds', '0'],
    {},
    expect.objectContaining({ tlsReloadSeconds: 0 }),
  ],
  // schema
  [['schema'], {}, {}],
];

describe('every command and option, as its handler gets them', () => {
  it.each(runs.map(([argv, env, expected]) => ({ line: argv.join(' ') || '(nothing)', argv, env, expected })))(
    '$line',
    ({ argv, env, expected }) => {
      expect(interpret(argv, env).args).toEqual(expected);
    },
  );

  it('runs serve when the command line names no command, and says whether one was named', () => {
    expect(interpret([])).toMatchObject({ command: 'serve', named: false });
    expect(interpret(['-c', 'x.yaml'])).toMatchObject({ command: 'serve', named: false });
    expect(interpret(['serve'])).toMatchObject({ command: 'serve', named: true });
    expect(interpret(['status', '--json'])).toMatchObject({ command: 'status', named: true });
  });
});

describe('--help, --version and help', () => {
  it('are taken by every command, short or long, without its operand or required options', () => {
    for (const command of commandTable.commands) {
      for (const flag of ['--help', '-h']) {
        expect(parseCommandLine(command, [flag]), `${command.name} ${flag}`).toMatchObject({ help: true, version: false });
      }
      for (const flag of ['--version', '-v']) {
        expect(parseCommandLine(command, [flag]), `${command.name} ${flag}`).toMatchObject({ help: false, version: true });
      }
    }
    expect(
      parseCommandLine(
        commandTable.commands.find((c) => c.name === 'status')!,
        ['--json'],
      ),
    ).toMatchObject({ help: false, version: false });
  });

  it("`help` alone is the main help, `help <command>` that command's", () => {
    expect(selectCommand(commandTable, ['help'])).toEqual({ kind: 'help', command: undefined });
    expect(selectCommand(commandTable, ['help', 'seed'])).toMatchObject({ kind: 'help', command: { name: 'seed' } });
    expect(() => selectCommand(commandTable, ['help', 'nope'])).toThrow('unknown command "nope"');
    expect(() => selectCommand(commandTable, ['help', 'seed', 'login'])).toThrow('help takes at most one command name');
  });
});

describe('usage errors: one message naming the option, never repeating a value', () => {
  const SECRET = 'sk-Qv8TzL2mWx-not-for-argv';

  it.each([
    [['frobnicate'], /^unknown command "frobnicate" \(commands: serve, check, seed, login, status, inject-webhook, schema\)$/],
    [['check', '--config'], /^--config needs a file path$/],
    [['check', '-c'], /^-c needs a file path$/],
    [['check', '--config='], /^--config needs a file path$/],
    // parseArgs would take the next option as the value; that is a missing value, not a file named --json.
    [['status', '--config', '--json'], /^--config needs a file path$/],
    [['status', '--admin'], /^--admin needs the admin URL, e.g. http:\/\/127\.0\.0\.1:9901$/],
    [['status', '--admin', 'ftp://127.0.0.1:9901'], /^--admin takes the admin URL, e.g. http:\/\/127\.0\.0\.1:9901$/],
    [['login', 'v3', '--listen'], /^--listen needs a loopback address HOST:PORT$/],
    [['login', 'v3', '--redirect-uri'], /^--redirect-uri needs a URL$/],
    [['login', 'v3', '--timeout'], /^--timeout needs a number of seconds$/],
    [['login', 'v3', '--timeout', '0'], /^--timeout takes a number of seconds$/],
    [['login', 'v3', '--timeout', 'soon'], /^--timeout takes a number of seconds$/],
    [['seed', 'apiax', '--force=yes'], /^--force takes no value$/],
    [['status', '--json=false'], /^--json takes no value$/],
    [['seed'], /^seed takes one upstream name$/],
    [['seed', 'apiax', 'collaborate'], /^seed takes one upstream name$/],
    [['login'], /^login takes one upstream name$/],
    [['check', 'extra'], /^check takes no arguments other than options$/],
    [['--config', 'a.yaml', 'extra'], /^serve takes no arguments other than options$/],
    [['inject-webhook'], /^--tls-cert and --tls-key are required$/],
    [['inject-webhook', '--tls-cert', 'c'], /^--tls-key is required$/],
    [['inject-webhook', '--tls-cert', 'c', '--tls-key'], /^--tls-key needs a file path$/],
    [['inject-webhook', '--tls-cert', 'c', '--tls-key', 'k', '--listen', '8443'], /^--listen must be HOST:PORT, e.g. 0\.0\.0\.0:8443$/],
    [['inject-webhook', '--tls-cert', 'c', '--tls-key', 'k', '--listen', 'host:99999'], /^--listen must be HOST:PORT/],
    [
      ['inject-webhook', '--tls-cert', 'c', '--tls-key', 'k', '--tls-reload-seconds', 'often'],
      /^--tls-reload-seconds takes a number of seconds \(0: never\)$/,
    ],
    [['schema', '--config', 'x.yaml'], /^unknown option "--config"$/],
  ] as const)('%j', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('an unknown option is named as typed, for every command, and its value is not repeated', () => {
    for (const command of commandTable.commands) {
      const operand = command.operand ? ['apiax'] : [];
      for (const [argv, name] of [
        [[`--client-secret=${SECRET}`], '--client-secret'],
        [['--refresh-token', SECRET], '--refresh-token'],
        [[`-X${SECRET}`], '-X'],
      ] as const) {
        const message = usageError([command.name, ...operand, ...argv]);
        expect(message, `${command.name} ${argv.join(' ')}`).toBe(`unknown option "${name}"`);
      }
    }
  });

  it('an option of one command is unknown to another', () => {
    expect(usageError(['check', '--force'])).toBe('unknown option "--force"');
    expect(usageError(['seed', 'apiax', '--watch'])).toBe('unknown option "--watch"');
    expect(usageError(['status', '--tls-cert', 'c'])).toBe('unknown option "--tls-cert"');
  });

  it('a stray operand is not repeated either (it may be a pasted token)', () => {
    for (const argv of [['seed', 'apiax', SECRET], ['check', SECRET], [SECRET.replace(/^sk/, '-sk')]]) {
      let message = '';
      try {
        interpret(argv);
      } catch (error) {
        message = String((error as Error).message);
      }
      expect(message, argv.join(' ')).not.toBe('');
      expect(message).not.toContain(SECRET.slice(3));
    }
  });

  it('every string option of every command reports its missing value by name', () => {
    for (const command of commandTable.commands) {
      const operand = command.operand ? ['apiax'] : [];
      for (const [name, spec] of Object.entries(command.options)) {
        if (spec.type !== 'string') continue;
        expect(usageError([command.name, ...operand, `--${name}`]), `${command.name} --${name}`).toMatch(new RegExp(`^--${name} needs `));
      }
    }
  });
});

describe('the cases above cover the table', () => {
  it('every option of every command (and every short form) is used in a line that parses', () => {
    const used = new Map<string, Set<string>>();
    for (const [argv] of runs) {
      const selection = selectCommand(commandTable, argv);
      if (selection.kind !== 'run') continue;
      const words = used.get(selection.command.name) ?? new Set<string>();
      for (const word of selection.argv) words.add(word.replace(/=.*$/, '').replace(/^(-[a-z]).+$/, '$1'));
      used.set(selection.command.name, words);
    }
    for (const command of commandTable.commands) {
      for (const [name, spec] of Object.entries(command.options)) {
        expect(used.get(command.name)?.has(`--${name}`), `${command.name} --${name}`).toBe(true);
        if (spec.short) expect(used.get(command.name)?.has(`-${spec.short}`), `${command.name} -${spec.short}`).toBe(true);
      }
    }
  });
});
