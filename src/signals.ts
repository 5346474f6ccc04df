/**
 * How the long-running commands (serve, inject-webhook) end: the first SIGTERM/SIGINT drains through
 * `stop` and resolves the exit code (0, or 1 if stopping failed); a second signal exits at once.
 */
import type { Logger } from './log.js';

export function stopOnSignal(logger: Logger, stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ event: 'forced_exit', signal }, 'second signal: exiting now');
        exitAfterFlush(logger, 1);
        return;
      }
      stopping = true;
      logger.info({ event: 'draining', signal }, `${signal}: finishing in-flight requests`);
      stop().then(
        () => {
          logger.info({ event: 'stopped' }, 'stopped');
          logger.flush();
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ event: 'stop_failed', err: String(error) }, 'error while stopping');
          logger.flush();
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** The logger writes asynchronously: give its last lines a moment to reach stdout, then exit. */
export function exitAfterFlush(logger: Logger, code: number): void {
  setTimeout(() => process.exit(code), 200);
  logger.flush(() => process.exit(code));
}
