/**
 * What a command of the table is: its name, a one-line summary, its options (node:util parseArgs option
 * config plus what the help says about each), at most one operand, its help text, and a handler. The
 * parser (args.ts) and the help (help.ts) read nothing else, so a command is described in one place.
 */

/** One option: the parseArgs config (type, short, default, multiple) and its help. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean | string[] | boolean[];
  /** What one line of help says the option does. */
  readonly description: string;
  /** The value's placeholder in Usage lines and help (FILE, URL, SECONDS); string options only. */
  readonly value?: string;
  /** The end of "--config needs …" when the value is missing, e.g. "a file path". Default: "a value (FILE)". */
  readonly needs?: string;
  /** A default that is not a constant (an environment variable, a config setting), as the help says it. */
  readonly defaultText?: string;
  /** Must be given (inject-webhook's TLS files); shown without brackets in the Usage line. */
  readonly required?: boolean;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'string'
  ? S extends { multiple: true }
    ? string[]
    : string
  : S extends { multiple: true }
    ? boolean[]
    : boolean;

/** The values parseArgs yields for a table: present when given or defaulted, else undefined. */
export type OptionValues<O extends OptionTable> = {
  readonly [K in keyof O]: O[K] extends { default: unknown } | { required: true } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

/** What the parser hands a command: option values checked against its table, and its operands. */
export interface FoundArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly operands: readonly string[];
}

/** The single positional argument a command takes (seed and login: the upstream's name). */
export interface OperandSpec {
  /** As the Usage line shows it: `<upstream>`. */
  readonly name: string;
  /** The end of "seed takes …" when it is missing or repeated, e.g. "one upstream name". */
  readonly needs: string;
}

export interface CommandContext {
  /** How the user runs this program (operator-hints.ts cliCommand), for help and hints. */
  readonly program: string;
  readonly env: NodeJS.ProcessEnv;
  /** This package's version. */
  readonly version: string;
}

/** A command as its file defines it; `Args` is what `interpret` makes of the command line. */
export interface CommandSpec<O extends OptionTable, Args> {
  readonly name: string;
  readonly summary: string;
  readonly options: O;
  readonly operand?: OperandSpec;
  /** The help's paragraphs between the Usage line and the option list. */
  readonly description: (program: string) => string;
  /** What the exit codes mean for this command, other than 2 (the command line is wrong). */
  readonly exitStatus: string;
  /** Checks values the parser cannot (a URL, a number, HOST:PORT) and shapes them; throws UsageError. */
  readonly interpret: (values: OptionValues<O>, operands: readonly string[], env: NodeJS.ProcessEnv) => Args;
  /** Runs the command; resolves to the exit code. */
  readonly run: (args: Args, context: CommandContext) => Promise<number>;
}

/** A command of the table, its argument type erased so that different commands share one list. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly options: OptionTable;
  readonly operand?: OperandSpec;
  readonly description: (program: string) => string;
  readonly exitStatus: string;
  /** What the command makes of its command line (typed in TypedCommand); throws UsageError. */
  readonly interpret: (found: FoundArgs, env: NodeJS.ProcessEnv) => unknown;
  /** Interprets the command line now (throwing UsageError if it is wrong) and returns the handler to run. */
  readonly bind: (found: FoundArgs, env: NodeJS.ProcessEnv) => (context: CommandContext) => Promise<number>;
}

export interface TypedCommand<Args> extends Command {
  readonly interpret: (found: FoundArgs, env: NodeJS.ProcessEnv) => Args;
}

export function defineCommand<const O extends OptionTable, Args>(spec: CommandSpec<O, Args>): TypedCommand<Args> {
  // The one cast: parseCommandLine checked `found.values` against this very table (types, values, required).
  const interpret = (found: FoundArgs, env: NodeJS.ProcessEnv): Args =>
    spec.interpret(found.values as OptionValues<O>, found.operands, env);
  return {
    name: spec.name,
    summary: spec.summary,
    options: spec.options,
    ...(spec.operand ? { operand: spec.operand } : {}),
    description: spec.description,
    exitStatus: spec.exitStatus,
    interpret,
    bind: (found, env) => {
      const args = interpret(found, env);
      return (context) => spec.run(args, context);
    },
  };
}
