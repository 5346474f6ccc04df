/**
 * Where the Redis tests find redis-server and redis-cli: $REDIS_SERVER / $REDIS_CLI when set, else on
 * PATH (redis-cli also next to $REDIS_SERVER). Missing, they fail the test at once with what to do,
 * instead of each spawn failing with ENOENT after a start-up timeout.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function fromEnv(variable: string): string | undefined {
  const value = process.env[variable];
  if (value === undefined || value === '') return undefined;
  if (!executable(value)) throw new Error(`${variable}=${value} is not an executable file`);
  return value;
}

/** The redis-server executable; throws with an install hint when there is none. */
export function redisServerPath(): string {
  const found = fromEnv('REDIS_SERVER') ?? onPath('redis-server');
  if (found === undefined) throw new Error('redis-server not found: install it (apt-get install redis-server) or set REDIS_SERVER');
  return found;
}

/** The redis-cli executable; throws with an install hint when there is none. */
export function redisCliPath(): string {
  const server = process.env.REDIS_SERVER ? join(dirname(process.env.REDIS_SERVER), 'redis-cli') : undefined;
  const found = fromEnv('REDIS_CLI') ?? (server !== undefined && executable(server) ? server : undefined) ?? onPath('redis-cli');
  if (found === undefined)
    throw new Error('redis-cli not found: install it (apt-get install redis-server, which brings it) or set REDIS_CLI');
  return found;
}
