/** The --config option of the commands that read proxy.yaml, and loading the file it names. */
import { loadConfigFile } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { ConfigError } from '../../errors.js';
import type { OptionSpec } from '../command-spec.js';

export const configOption = {
  type: 'string',
  short: 'c',
  value: 'FILE',
  needs: 'a file path',
  description: 'the config file',
  defaultText: '$OAUTH_SIDECAR_CONFIG, else ./proxy.yaml',
} as const satisfies OptionSpec;

export function configPath(value: string | undefined, env: NodeJS.ProcessEnv): string {
  return value ?? (env.OAUTH_SIDECAR_CONFIG || './proxy.yaml');
}

/** Runs `use` with the loaded config; a config that cannot be read or is invalid is reported on stderr and exits 1. */
export async function withConfig(path: string, use: (config: Config) => Promise<number>): Promise<number> {
  let config: Config;
  try {
    config = loadConfigFile(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`oauth-sidecar: ${error.message}\n`);
    return 1;
  }
  return use(config);
}
