/**
 * The help generated from the command table: conventional Usage lines, every option of every command
 * listed with its meaning and default, the main help listing every command, and the two lines of a usage
 * error. Checked by content, not by snapshot, so that rewording a description does not break it.
 */
import { describe, expect, it } from 'vitest';
import { commonOptions } from '../../src/cli/args.js';
import { commandTable } from '../../src/cli/command-table.js';
import { commandHelp, HELP_WIDTH, mainHelp, usageErrorText, usageLine } from '../../src/cli/help.js';

const PROGRAM = './bin/oauth-sidecar.js';

function command(name: string) {
  const found = commandTable.commands.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no command ${name}`);
  return found;
}

const isDefault = (name: string) => commandTable.defaultCommand.name === name;

/** The rows of a help's option list, each as one line (wrapped descriptions joined), without the indent. */
function optionRows(help: string): string[] {
  const list = help.split('\n\nOptions:\n')[1]?.split('\n\n')[0] ?? '';
  const rows: string[] = [];
  for (const line of list.split('\n')) {
    if (/^ {2}(-\w, | {4})--/.test(line)) rows.push(line.trim().replace(/\s+/g, ' '));
    else rows[rows.length - 1] += ` ${line.trim()}`;
  }
  return rows;
}

/** A Usage line as one line, whatever its wrapping. */
const unwrapped = (text: string) => text.replace(/\n\s+/g, ' ');

describe('Usage lines', () => {
  it.each([
    ['serve', 'Usage: ./bin/oauth-sidecar.js [serve] [--config FILE]'],
    ['check', 'Usage: ./bin/oauth-sidecar.js check [--config FILE]'],
    ['seed', 'Usage: ./bin/oauth-sidecar.js seed [--config FILE] [--force] <upstream>'],
    [
      'login',
      'Usage: ./bin/oauth-sidecar.js login [--config FILE] [--listen HOST:PORT] [--redirect-uri URL] [--timeout SECONDS] [--force] <upstream>',
    ],
    ['status', 'Usage: ./bin/oauth-sidecar.js status [--config FILE] [--admin URL] [--json] [--watch]'],
    [
      'inject-webhook',
      'Usage: ./bin/oauth-sidecar.js inject-webhook --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--image IMAGE] [--log-level LEVEL] [--tls-reload-seconds SECONDS]',
    ],
    ['schema', 'Usage: ./bin/oauth-sidecar.js schema'],
  ])('%s', (name, expected) => {
    const line = usageLine(command(name), PROGRAM, isDefault(name));
    expect(unwrapped(line)).toBe(expected);
    // Wrapped under the command, each line within the width.
    for (const part of line.split('\n')) expect(part.length, part).toBeLessThanOrEqual(HELP_WIDTH);
    for (const part of line.split('\n').slice(1)) expect(part.startsWith(' '.repeat(`Usage: ${PROGRAM} ${name} `.length))).toBe(true);
  });
});

describe('<command> --help', () => {
  for (const each of commandTable.commands) {
    it(`${each.name}: the Usage line, every option with its meaning and default, --help, the exit status`, () => {
      const help = commandHelp(each, PROGRAM, isDefault(each.name));
      expect(help.startsWith(usageLine(each, PROGRAM, isDefault(each.name)))).toBe(true);
      const rows = optionRows(help);
      for (const [name, spec] of Object.entries(each.options)) {
        const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` ${spec.value}` : ''}`;
        const row = rows.find((candidate) => candidate.startsWith(`${flag} `));
        expect(row, `${each.name} --${name}`).toBeDefined();
        expect(row, `${each.name} --${name}`).toContain(spec.description);
        if (spec.required) expect(row).toContain('(required)');
        if (spec.defaultText) expect(row).toContain(`(default: ${spec.defaultText})`);
        else if (spec.type === 'string' && spec.default !== undefined) expect(row).toContain(`(default: ${String(spec.default)})`);
      }
      expect(rows.some((row) => row.startsWith('-h, --help '))).toBe(true);
      expect(rows).toHaveLength(Object.keys(each.options).length + 1);
      expect(help.replace(/\s+/g, ' ')).toMatch(/ Exit status: 0.*; 2 when the command line is wrong\.$/);
      for (const line of help.split('\n')) expect(line.length, line).toBeLessThanOrEqual(HELP_WIDTH);
    });
  }

  it('examples name the program as it was run', () => {
    expect(commandHelp(command('seed'), PROGRAM, false)).toContain(`printf '%s' "$REFRESH_TOKEN" | ${PROGRAM} seed collaborate`);
    expect(commandHelp(command('seed'), 'oauth-sidecar', false)).toContain(`| oauth-sidecar seed collaborate`);
  });

  it('says where secrets come from instead', () => {
    expect(commandHelp(command('seed'), PROGRAM, false)).toMatch(/standard input \(never from the command line/);
    expect(commandHelp(command('login'), PROGRAM, false)).toContain('never from the command line');
    expect(commandHelp(command('inject-webhook'), PROGRAM, false)).toContain('a file, never the key itself');
  });
});

describe('--help (the main help)', () => {
  it('lists every command with its summary, the options of every command, and where secrets come from', () => {
    const help = mainHelp(commandTable, PROGRAM);
    expect(help).toContain(`Usage: ${PROGRAM} [<command>] [options]`);
    expect(help).toContain(`${PROGRAM} <command> --help`);
    for (const each of commandTable.commands)
      expect(help).toMatch(new RegExp(`\\n {2}${each.name} +${each.summary.replace(/[()]/g, '\\$&')}`));
    expect(help).toMatch(/serve +run the proxy \(the default command\)/);
    for (const [name, spec] of Object.entries(commonOptions)) expect(help).toContain(`-${spec.short}, --${name}`);
    expect(help).toContain('never from the command line');
    expect(help).toContain('$OAUTH_SIDECAR_CONFIG');
    expect(help).toContain('2 the command line is wrong');
    for (const line of help.split('\n')) expect(line.length, line).toBeLessThanOrEqual(HELP_WIDTH);
  });
});

describe('a usage error', () => {
  it('is one line naming the problem and the help to read, then the Usage line', () => {
    const text = usageErrorText('unknown option "--frob"', PROGRAM, command('seed'), false);
    const [first, ...rest] = text.trimEnd().split('\n');
    expect(first).toBe(`oauth-sidecar: unknown option "--frob"; see ${PROGRAM} seed --help`);
    expect(rest.join('\n')).toBe(usageLine(command('seed'), PROGRAM, false));
  });

  it('points at the main help when no command could be chosen', () => {
    expect(usageErrorText('unknown command "frob" (commands: …)', 'oauth-sidecar', undefined, false)).toBe(
      'oauth-sidecar: unknown command "frob" (commands: …); see oauth-sidecar --help\nUsage: oauth-sidecar [<command>] [options]\n',
    );
  });
});
