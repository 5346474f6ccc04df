/** `check`: validate the config and print what would run, without secret values. */
import { describeConfig } from '../check.js';
import { defineCommand } from '../command-spec.js';
import { configOption, configPath, withConfig } from './config-option.js';

export const checkCommand = defineCommand({
  name: 'check',
  summary: 'validate the config and print a summary (no secret values)',
  options: { config: configOption },
  description: () => `Validates the config file and prints what would run: listeners, store, and per upstream its route,
target, preset and which credentials are present (never their values).`,
  exitStatus: '0 when the config is valid, 1 otherwise (each problem is listed with its path)',
  interpret: (values, _operands, env) => ({ configPath: configPath(values.config, env) }),
  run: (args) =>
    withConfig(args.configPath, async (config) => {
      process.stdout.write(`${describeConfig(config)}\n`);
      return 0;
    }),
});
