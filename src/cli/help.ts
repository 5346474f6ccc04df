/**
 * Help generated from the command table: the main help (`--help`), one command's help
 * (`<command> --help`), and the lines printed under a usage error. `program` is how the user runs this
 * program (cliCommand in operator-hints.ts), so every line can be pasted as it is.
 */
import { commonOptions, type CommandTable } from './args.js';
import type { Command, OptionSpec, OptionTable } from './command-spec.js';

/** Lines are wrapped at this width; the hand-written descriptions keep to it too. */
export const HELP_WIDTH = 100;

/** `Usage: oauth-sidecar seed [--config FILE] [--force] <upstream>`, wrapped under the command at HELP_WIDTH. */
export function usageLine(command: Command, program: string, isDefault: boolean): string {
  const head = `Usage: ${program} ${isDefault ? `[${command.name}]` : command.name}`;
  const words = Object.entries(command.options).map(([name, spec]) => synopsis(name, spec));
  if (command.operand) words.push(command.operand.name);
  return wrap([head, ...words], ' '.repeat(head.length + 1));
}

function synopsis(name: string, spec: OptionSpec): string {
  const word = `--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
  return `${spec.required ? word : `[${word}]`}${spec.multiple ? '...' : ''}`;
}

export function commandHelp(command: Command, program: string, isDefault: boolean): string {
  return [
    usageLine(command, program, isDefault),
    command.description(program),
    `Options:\n${optionList({ ...command.options, help: commonOptions.help })}`,
    wrap(`Exit status: ${command.exitStatus}; 2 when the command line is wrong.`.split(' '), ''),
  ].join('\n\n');
}

export function mainHelp(table: CommandTable, program: string): string {
  const nameWidth = Math.max(...table.commands.map((command) => command.name.length)) + 3;
  const commands = table.commands.map(
    (command) => `  ${command.name.padEnd(nameWidth)}${command.summary}${command === table.defaultCommand ? ' (the default command)' : ''}`,
  );
  return [
    'oauth-sidecar: an authenticating reverse proxy that attaches and refreshes OAuth bearer tokens',
    `Usage: ${program} [<command>] [options]\n       ${program} <command> --help     (or: ${program} help <command>)`,
    `Commands:\n${commands.join('\n')}`,
    `Options of every command:\n${optionList(commonOptions)}`,
    [
      'The config file defaults to ./proxy.yaml, or $OAUTH_SIDECAR_CONFIG.',
      'Secrets come from the config file, ${ENV} references or …File keys, never from the command line.',
      'Exit status: 0 done, 1 failed (each command says when), 2 the command line is wrong.',
    ].join('\n'),
  ].join('\n\n');
}

/** What a usage error prints on stderr: the problem and where to read more, then the Usage line. */
export function usageErrorText(message: string, program: string, command: Command | undefined, isDefault: boolean): string {
  const helpCommand = command ? `${program} ${command.name} --help` : `${program} --help`;
  const usage = command ? usageLine(command, program, isDefault) : `Usage: ${program} [<command>] [options]`;
  return `oauth-sidecar: ${message}; see ${helpCommand}\n${usage}\n`;
}

function optionList(options: OptionTable): string {
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
    return [flag, `${spec.description}${defaultNote(spec)}`] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 3;
  return rows.map(([flag, text]) => wrap([`  ${flag.padEnd(width - 1)}`, ...text.split(' ')], ' '.repeat(width + 2))).join('\n');
}

function defaultNote(spec: OptionSpec): string {
  if (spec.required) return ' (required)';
  if (spec.defaultText !== undefined) return ` (default: ${spec.defaultText})`;
  if (spec.type === 'string' && spec.default !== undefined) return ` (default: ${String(spec.default)})`;
  return '';
}

/** Joins words with spaces into lines of at most HELP_WIDTH; continuation lines start with `indent`. A line holds at least one word. */
function wrap(words: readonly string[], indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = `${indent}${word}`;
    } else line = `${line} ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}
