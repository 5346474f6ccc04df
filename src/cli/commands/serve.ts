/**
 * `serve` (the default command): run the proxy until SIGTERM or SIGINT. This handler decides the
 * process's fate while serving (signals, a crash); everything else is in createApp, which tests use directly.
 */
import { createApp } from '../../app.js';
import type { Config } from '../../config/types.js';
import { ConfigError, StoreError } from '../../errors.js';
import { tlsFileProblems } from '../../net/describe-egress.js';
import { reloadOnChange } from '../../reload-on-change.js';
import { createLogger } from '../../log.js';
import { defineCommand } from '../command-spec.js';
import { exitAfterFlush, stopOnSignal } from '../../signals.js';
import { configOption, configPath, withConfig } from './config-option.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'run the proxy',
  options: { config: configOption },
  description: () => `Runs the proxy. Requests to http://<listen>/<upstream>/… are forwarded to the upstream's target with
the current bearer token attached. SIGTERM or SIGINT drains in-flight requests and exits 0; a second
signal exits at once. SIGHUP, or a change of the config file (reload.watch), reloads the config
without dropping requests; a config with problems is refused whole, the running one keeps serving.`,
  exitStatus:
    '0 after a drain on SIGTERM or SIGINT (1 when a second signal cut it short), 1 on a configuration error or when it cannot start (e.g. the port is taken), 70 after an unexpected error',
  interpret: (values, _operands, env) => ({ configPath: configPath(values.config, env) }),
  run: (args, context) => withConfig(args.configPath, (config) => serve(config, context.version)),
});

async function serve(config: Config, version: string): Promise<number> {
  // The proxy reads the TLS files when it builds its connections; a bad one is a configuration error.
  const tlsProblems = tlsFileProblems(config);
  if (tlsProblems.length > 0) {
    process.stderr.write(`oauth-sidecar: ${new ConfigError(tlsProblems).message}\n`);
    return 1;
  }
  const logger = createLogger({ level: config.log.level });
  const app = createApp(config, { logger, version });
  // The handlers go in before start(): a signal that arrives while starting, or just after the "started"
  // line (start-up work such as the first token request may still hold the event loop), must drain and exit 0, not
  // kill the process with the default action.
  let starting: Promise<unknown> = Promise.resolve();
  const stopped = stopOnSignal(logger, () => starting.catch(() => undefined).then(() => app.stop()));
  // A bug must not take the process down silently: log it (the message only, never request data),
  // flush, and exit so the supervisor restarts us with the durable store intact.
  const onFatal = (error: unknown) => {
    logger.fatal(
      { event: 'crashed', err: error instanceof Error ? `${error.name}: ${error.message}` : String(error) },
      'unexpected error; exiting',
    );
    exitAfterFlush(logger, 70);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  try {
    starting = app.start();
    await starting;
  } catch (error) {
    const message = error instanceof StoreError || isListenError(error) ? (error as Error).message : String(error);
    logger.fatal({ event: 'start_failed' }, `cannot start: ${message}`);
    logger.flush();
    process.stderr.write(`oauth-sidecar: cannot start: ${message}\n`);
    await app.stop().catch(() => undefined);
    return 1;
  }
  const stopReloading = reloadOnChange({ path: config.source, app, logger, config });
  const code = await stopped;
  stopReloading();
  return code;
}

function isListenError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL';
}
