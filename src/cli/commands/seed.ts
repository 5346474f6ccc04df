/** `seed <upstream>`: store a refresh token read from standard input, never from the command line. */
import type { Config } from '../../config/types.js';
import { defineCommand } from '../command-spec.js';
import { readStdin, seedRefreshToken } from '../seed.js';
import { configOption, configPath, withConfig } from './config-option.js';

interface SeedArgs {
  readonly configPath: string;
  readonly upstream: string;
  readonly force: boolean;
}

export const seedCommand = defineCommand({
  name: 'seed',
  summary: 'store a refresh token read from stdin (the next generation)',
  options: {
    config: configOption,
    force: { type: 'boolean', default: false, description: 'replace a live record (one that still holds usable tokens)' },
  },
  operand: { name: '<upstream>', needs: 'one upstream name' },
  description: (program) => `Reads a refresh token from standard input (never from the command line, where \`ps\` and shell
history would show it) and writes it to the configured token store as the next generation of the
upstream's record. A running proxy that shares the store picks it up and refreshes with it. A live
record is replaced only with --force; a dead credential is replaced without it. Prints only a
fingerprint.

Example:
  printf '%s' "$REFRESH_TOKEN" | ${program} seed collaborate`,
  exitStatus: '0 when stored, 1 otherwise (no such upstream, an empty token, a live record without --force, the store)',
  interpret: (values, operands, env): SeedArgs => ({
    configPath: configPath(values.config, env),
    upstream: operands[0] ?? '',
    force: values.force,
  }),
  run: (args) => withConfig(args.configPath, (config) => seed(config, args)),
});

async function seed(config: Config, args: SeedArgs): Promise<number> {
  if (process.stdin.isTTY) process.stderr.write(`Paste the refresh token for ${args.upstream}, then press Enter and Ctrl-D:\n`);
  try {
    const refreshToken = await readStdin(process.stdin);
    process.stdout.write(`${await seedRefreshToken(config, { upstream: args.upstream, force: args.force, refreshToken })}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
