/**
 * Config reload for `serve`: on SIGHUP, and when the config file's text or one of the `…File` secrets it
 * reads changes (read every reload.intervalMs, since Kubernetes ConfigMap and Secret volumes swap a
 * symlink, which file watchers can miss).
 * A new config is checked whole, TLS files included; one with any problem is refused with every problem
 * logged, and the running config keeps serving. Reloads run one at a time, in the order they were asked for.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { App } from './app.js';
import { parseConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { ConfigError } from './errors.js';
import type { Logger } from './log.js';
import { tlsFileProblems } from './net/describe-egress.js';

export interface ReloadOptions {
  readonly path: string;
  readonly app: App;
  readonly logger: Logger;
  /** The config the app started with: its sha256, and whether and how often to watch the file. */
  readonly config: Config;
}

/** Starts listening for SIGHUP and watching the file; returns the function that stops both. */
export function reloadOnChange(options: ReloadOptions): () => void {
  const { app, logger } = options;
  const path = resolve(options.path);
  /** The secret files the running config read: a new value in one (a rotated client secret) is a change too. */
  let secretFiles = options.config.secretFiles;
  /** The text and secrets last acted on (applied or refused), so a refused file is reported once, not every tick. */
  let lastTextSha256 = options.config.sha256;
  let lastSeen = `${lastTextSha256}:${secretsDigestSync(secretFiles)}`;
  let queue = Promise.resolve();

  const reload = (reason: string, text: string): void => {
    queue = queue
      .then(() => reloadText(reason, text))
      .catch((error: unknown) => {
        logger.error(
          { event: 'config_reload_failed', reason, err: String(error) },
          'reloading the config failed; still serving the previous one',
        );
      });
  };

  async function reloadText(reason: string, text: string): Promise<void> {
    const sha256 = sha256Of(text);
    let next: Config;
    try {
      next = parseConfig(text, { source: path });
      const problems = tlsFileProblems(next);
      if (problems.length > 0) throw new ConfigError(problems);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      refused(reason, sha256, error.problems);
      return;
    }
    try {
      const outcome = await app.reload(next);
      // Followed from now on; their state now is the state this config was built from.
      secretFiles = next.secretFiles;
      lastSeen = `${sha256}:${await secretsDigest(secretFiles)}`;
      logger.info({ event: 'config_reloaded', reason, sha256, ...outcome }, `config reloaded (${reason})`);
      if (outcome.restartNeededFor.length > 0)
        logger.warn(
          { event: 'config_restart_needed', settings: outcome.restartNeededFor },
          `${outcome.restartNeededFor.join(', ')} changed: only a restart applies them; the running values stay`,
        );
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      refused(reason, sha256, error.problems, false);
    }
  }

  function refused(reason: string, sha256: string, problems: readonly string[], note = true): void {
    if (note) app.noteRefusedConfig(sha256, problems);
    logger.error(
      { event: 'config_reload_refused', reason, sha256, problems },
      `the new config has ${problems.length} problem(s); still serving the previous one`,
    );
  }

  async function readIfChanged(reason: string, always: boolean): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      // Mid-swap the file can be missing for a moment; SIGHUP says so, the watcher tries again next tick.
      if (always)
        logger.error({ event: 'config_reload_refused', reason, code: (error as NodeJS.ErrnoException).code }, `cannot read ${path}`);
      return;
    }
    const sha256 = sha256Of(text);
    const seen = `${sha256}:${await secretsDigest(secretFiles)}`;
    if (!always && seen === lastSeen) return;
    const why = !always && sha256 === lastTextSha256 ? 'secret file changed' : reason;
    lastSeen = seen;
    lastTextSha256 = sha256;
    reload(why, text);
  }

  const onHangup = () => void readIfChanged('SIGHUP', true);
  process.on('SIGHUP', onHangup);
  let checking = false;
  const timer = options.config.reload.watch
    ? setInterval(() => {
        if (checking) return;
        checking = true;
        void readIfChanged('file changed', false).finally(() => (checking = false));
      }, options.config.reload.intervalMs)
    : undefined;
  timer?.unref();

  return () => {
    process.off('SIGHUP', onHangup);
    clearInterval(timer);
  };
}

/** One digest over the secret files' contents; a file that cannot be read counts as its error code. */
async function secretsDigest(files: readonly string[]): Promise<string> {
  const contents = await Promise.all(files.map((file) => readFile(file).catch((error: NodeJS.ErrnoException) => error.code ?? 'error')));
  return digestOf(contents);
}

function secretsDigestSync(files: readonly string[]): string {
  return digestOf(
    files.map((file) => {
      try {
        return readFileSync(file);
      } catch (error) {
        return (error as NodeJS.ErrnoException).code ?? 'error';
      }
    }),
  );
}

function digestOf(contents: readonly (Buffer | string)[]): string {
  const hash = createHash('sha256');
  for (const content of contents) hash.update(sha256Of(content));
  return hash.digest('hex');
}

function sha256Of(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}
