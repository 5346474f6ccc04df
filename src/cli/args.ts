/**
 * Command-line parsing with node:util parseArgs, driven by the command table (command-spec.ts):
 * `oauth-sidecar [command] [options] [operand]`. Secrets are never taken from argv: no command has an
 * option for one, and no message repeats the value of an option or operand (it may be a pasted secret).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';
import type { Command, FoundArgs, OptionSpec, OptionTable } from './command-spec.js';

/** Options every command takes besides its own. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  version: { type: 'boolean', short: 'v', description: 'print the version' },
} as const satisfies OptionTable;

export interface CommandTable {
  readonly commands: readonly Command[];
  /** What runs when the command line names none (`oauth-sidecar --config FILE`). */
  readonly defaultCommand: Command;
}

export type Selection =
  | { readonly kind: 'run'; readonly command: Command; readonly named: boolean; readonly argv: readonly string[] }
  | { readonly kind: 'help'; readonly command: Command | undefined };

/** Which command the first argument names: `help [command]`, a command, or (an option or nothing) the default. */
export function selectCommand(table: CommandTable, argv: readonly string[]): Selection {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('-')) return { kind: 'run', command: table.defaultCommand, named: false, argv };
  if (first === 'help') {
    if (rest.length > 1) throw new UsageError('help takes at most one command name');
    return { kind: 'help', command: rest[0] === undefined ? undefined : findCommand(table, rest[0]) };
  }
  return { kind: 'run', command: findCommand(table, first), named: true, argv: rest };
}

function findCommand(table: CommandTable, name: string): Command {
  const command = table.commands.find((candidate) => candidate.name === name);
  if (!command) throw new UsageError(`unknown command "${name}" (commands: ${table.commands.map((c) => c.name).join(', ')})`);
  return command;
}

export interface CommandLine extends FoundArgs {
  readonly help: boolean;
  readonly version: boolean;
}

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];
type OptionToken = Extract<Token, { kind: 'option' }>;

/**
 * Parses what follows the command name. Option errors come first, in argv order; with --help or
 * --version the operand and required options are not checked (`seed --help` needs no upstream).
 */
export function parseCommandLine(command: Pick<Command, 'name' | 'options' | 'operand'>, argv: readonly string[]): CommandLine {
  const table: OptionTable = { ...command.options, ...commonOptions };
  // strict: false, and the tokens checked here, so that every message is ours: it names the option as
  // typed and never carries a value. (Strict mode would also take `--config --force` as ambiguous; so do we.)
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    options: parseArgsOptions(table),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) if (token.kind === 'option') checkOption(table, token);
  const help = values.help === true;
  const version = values.version === true;
  const found = Object.fromEntries(Object.keys(command.options).map((name) => [name, values[name]]));
  if (help || version) return { help, version, values: found, operands: [] };

  if (command.operand) {
    if (positionals.length !== 1) throw new UsageError(`${command.name} takes ${command.operand.needs}`);
  } else if (positionals.length > 0) {
    throw new UsageError(`${command.name} takes no arguments other than options`);
  }
  const missing = Object.entries(command.options)
    .filter(([name, spec]) => spec.required && values[name] === undefined)
    .map(([name]) => `--${name}`);
  if (missing.length > 0) throw new UsageError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  return { help, version, values: found, operands: positionals };
}

function checkOption(table: OptionTable, token: OptionToken): void {
  const spec: OptionSpec | undefined = Object.hasOwn(table, token.name) ? table[token.name] : undefined;
  // Only the name: `--client-secret=…` must not echo its value into a terminal or a log collector.
  if (!spec) throw new UsageError(`unknown option "${token.rawName}"`);
  if (spec.type === 'boolean') {
    if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`);
    return;
  }
  // parseArgs takes the next argument as the value even when it looks like an option (`--config --force`).
  const value = token.value;
  if (value === undefined || value === '' || (!token.inlineValue && value.startsWith('-'))) {
    throw new UsageError(`${token.rawName} needs ${spec.needs ?? `a value (${spec.value ?? 'VALUE'})`}`);
  }
}

/** The table as parseArgs wants it: only the keys it knows. */
function parseArgsOptions(table: OptionTable): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    Object.entries(table).map(([name, spec]) => [
      name,
      {
        type: spec.type,
        ...(spec.short === undefined ? {} : { short: spec.short }),
        ...(spec.multiple === undefined ? {} : { multiple: spec.multiple }),
        ...(spec.default === undefined ? {} : { default: spec.default }),
      },
    ]),
  );
}
