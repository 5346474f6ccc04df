/**
 * Runs one command of the table from its part of argv: --version, --help, or the handler. A wrong
 * command line prints one line naming the problem and the help to read, then the Usage line, and exits 2.
 */
import { UsageError } from '../errors.js';
import { parseCommandLine } from './args.js';
import type { Command, CommandContext } from './command-spec.js';
import { commandHelp, usageErrorText } from './help.js';

export interface RunOptions {
  /** The command ran because none was named: its Usage line shows `[serve]`. */
  readonly isDefault?: boolean;
  /** What --help prints instead of the command's own help (the main help, when no command was named). */
  readonly help?: string;
}

/** Resolves to the exit code. `argv` is what follows the command name. */
export async function runCommand(
  command: Command,
  argv: readonly string[],
  context: CommandContext,
  options: RunOptions = {},
): Promise<number> {
  const isDefault = options.isDefault ?? false;
  let run: (context: CommandContext) => Promise<number>;
  try {
    const line = parseCommandLine(command, argv);
    if (line.version) {
      process.stdout.write(`${context.version}\n`);
      return 0;
    }
    if (line.help) {
      process.stdout.write(`${options.help ?? commandHelp(command, context.program, isDefault)}\n`);
      return 0;
    }
    run = command.bind(line, context.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(usageErrorText(error.message, context.program, command, isDefault));
    return 2;
  }
  return run(context);
}
