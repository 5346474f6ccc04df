/**
 * One proxy per token file. The file store's refresh lock lives inside the process, so two proxies on one
 * file (two compose services on one volume, a second `serve` on another port, an old and a new pod during
 * a rolling update) would both refresh with the same one-time refresh token, and the second refresh would
 * kill the credential. `serve` therefore holds a lease beside the file, `<file>.lease` (owner, pid, host),
 * renewed every few seconds by touching it. A proxy that finds another owner's fresh lease does not open
 * the store (a retryable StoreError: it starts unready and tries again); a lease not renewed for
 * `staleMs` belongs to a holder that died (or whose machine did) and is taken over. A holder that finds
 * its lease taken (it was frozen past `staleMs`) stops refreshing: the store's lock refuses it.
 * The CLI commands (seed, login, status) read and write the file without a lease.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { StoreError } from '../errors.js';

export interface FileLeaseOptions {
  readonly owner: string;
  /** How often the holder touches the lease (default 5 s). */
  readonly renewMs?: number;
  /** A lease untouched this long is taken over (default 15 s). */
  readonly staleMs?: number;
}

export interface FileLease {
  /** Whether this process still holds the lease (checked at every renewal). */
  held(): boolean;
  release(): Promise<void>;
}

interface LeaseContents {
  owner: string;
  pid: number;
  host: string;
  since: string;
}

export async function takeFileLease(tokenFile: string, options: FileLeaseOptions): Promise<FileLease> {
  const path = `${tokenFile}.lease`;
  const renewMs = options.renewMs ?? 5000;
  const staleMs = options.staleMs ?? 15_000;
  const mine: LeaseContents = { owner: options.owner, pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;

  try {
    await writeFile(path, text, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw leaseError(path, error);
    const current = await readLease(path);
    if (current.contents?.owner !== mine.owner && current.ageMs < staleMs) {
      const who = current.contents ? `pid ${current.contents.pid} on ${current.contents.host}` : 'an unknown process';
      throw new StoreError(
        `token file ${tokenFile} is in use by another oauth-sidecar (${who}, lease renewed ${Math.round(current.ageMs / 1000)} s ago); one proxy per token file (many replicas share a Redis store)`,
        { retryable: true },
      );
    }
    // Stale (its holder stopped renewing) or ours: replace it in one step.
    const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, path);
  }

  let holding = true;
  const renew = async (): Promise<void> => {
    let current = await readLease(path);
    if (current.ageMs === Number.POSITIVE_INFINITY) {
      // Deleted under us (a cleanup, a person): nobody took it over, so it is put back.
      await writeFile(path, text, { flag: 'wx', mode: 0o600 }).catch(() => undefined);
      current = await readLease(path);
    }
    // Unreadable means being written by a successor right now; the next renewal will tell whose it is.
    if (current.contents === undefined) return;
    // Held by another owner: lost (this process was frozen past staleMs). Ours again once it is free.
    holding = current.contents.owner === mine.owner;
    if (!holding) return;
    const now = new Date();
    await utimes(path, now, now);
  };
  const timer = setInterval(() => void renew().catch(() => undefined), renewMs);
  timer.unref();

  return {
    held: () => holding,
    async release() {
      clearInterval(timer);
      if (holding && (await readLease(path)).contents?.owner === mine.owner) await rm(path, { force: true });
      holding = false;
    },
  };
}

async function readLease(path: string): Promise<{ contents: LeaseContents | undefined; ageMs: number }> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let contents: LeaseContents | undefined;
    try {
      contents = JSON.parse(text) as LeaseContents;
    } catch {
      contents = undefined; // half-written by a starting holder: treat as held, by whom is unknown
    }
    return { contents, ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { contents: undefined, ageMs: Number.POSITIVE_INFINITY };
    throw leaseError(path, error);
  }
}

function leaseError(path: string, error: unknown): StoreError {
  return new StoreError(`cannot use the lease file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
}
