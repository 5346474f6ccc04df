/**
 * How the user runs this program, for help and hints they can paste: `oauth-sidecar` when installed
 * (npm links the bin as `oauth-sidecar` on PATH), and the bin script's path in a clone, where
 * `oauth-sidecar` is not on PATH: `./bin/oauth-sidecar.js`, or its absolute path from elsewhere.
 */
import { basename, isAbsolute, relative } from 'node:path';

const BIN_SCRIPT = 'oauth-sidecar.js';

/** `script` is process.argv[1] (Node makes it absolute, without resolving links); `cwd` the working directory. */
export function programName(script: string | undefined, cwd: string): string {
  if (script === undefined || basename(script) !== BIN_SCRIPT) return 'oauth-sidecar';
  const fromCwd = relative(cwd, script);
  if (isAbsolute(fromCwd) || fromCwd === '..' || fromCwd.startsWith('../')) return script;
  return `./${fromCwd}`;
}
