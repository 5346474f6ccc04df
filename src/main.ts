/**
 * CLI entry: pick the command from the table, parse its arguments, run it; resolves to the exit code.
 * Commands are in src/cli/command-table.ts; what serving does with signals and crashes is in
 * src/cli/commands/serve.ts. Everything else is in createApp, which tests use directly.
 */
import { selectCommand, type Selection } from './cli/args.js';
import { commandTable } from './cli/command-table.js';
import type { CommandContext } from './cli/command-spec.js';
import { commandHelp, mainHelp, usageErrorText } from './cli/help.js';
import { packageVersion } from './cli/package-version.js';
import { runCommand } from './cli/run-command.js';
import { UsageError } from './errors.js';
import { cliCommand } from './operator-hints.js';

export async function main(argv: readonly string[]): Promise<number> {
  const context: CommandContext = { program: cliCommand(process.argv[1], process.cwd()), env: process.env, version: packageVersion() };
  let selection: Selection;
  try {
    selection = selectCommand(commandTable, argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(usageErrorText(error.message, context.program, undefined, false));
    return 2;
  }
  const { defaultCommand } = commandTable;
  if (selection.kind === 'help') {
    const { command } = selection;
    process.stdout.write(
      `${command ? commandHelp(command, context.program, command === defaultCommand) : mainHelp(commandTable, context.program)}\n`,
    );
    return 0;
  }
  const { command, named } = selection;
  // `oauth-sidecar --help` is the main help; `oauth-sidecar serve --help` is serve's.
  return runCommand(command, selection.argv, context, {
    isDefault: command === defaultCommand,
    ...(named ? {} : { help: mainHelp(commandTable, context.program) }),
  });
}
