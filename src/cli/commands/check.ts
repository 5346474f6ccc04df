/** `check`: validate the config and print what would run, without secret values. */
import { describeConfig } from '../check.js';
import { ConfigError } from '../../errors.js';
import { tlsFileProblems } from '../../net/describe-egress.js';
import { defineCommand } from '../command-spec.js';
import { configOption, configPath, withConfig } from './config-option.js';

export const checkCommand = defineCommand({
  name: 'check',
  summary: 'validate the config and print a summary (no secret values)',
  options: { config: configOption },
  description: () => `Validates the config file and prints what would run: listeners, store, and per upstream its route,
target, preset, which credentials are present (never their values), and how the target and the
token endpoint are reached: direct or through which egress proxy (HTTPS_PROXY, NO_PROXY or proxy:),
with which TLS settings. The TLS files are read and checked as the proxy does at start-up.`,
  exitStatus: '0 when the config is valid, 1 otherwise (each problem is listed with its path)',
  interpret: (values, _operands, env) => ({ configPath: configPath(values.config, env) }),
  run: (args) =>
    withConfig(args.configPath, async (config) => {
      // The proxy reads the TLS files at start-up; check reads them too, so a bad file fails here first.
      const problems = tlsFileProblems(config);
      if (problems.length > 0) {
        process.stderr.write(`oauth-sidecar: ${new ConfigError(problems).message}\n`);
        return 1;
      }
      process.stdout.write(`${describeConfig(config)}\n`);
      return 0;
    }),
});
