/**
 * CLI entry: parse arguments, load config, run a command. The only place that decides the process's
 * fate (signals, exit codes). Everything else is in createApp, which tests use directly.
 */
import { readFileSync } from 'node:fs';
import { createApp } from './app.js';
import { describeConfig } from './cli/check.js';
import { parseArgs, usage, UsageError, type ParsedArgs } from './cli/args.js';
import { readStdin, seedRefreshToken } from './cli/seed.js';
import { exitAfterFlush, stopOnSignal } from './cli/signals.js';
import { runLogin } from './cli/login.js';
import { adminStatusSource, collectStatus, openStatusSource } from './cli/status.js';
import { formatStatusTable } from './cli/status-table.js';
import { watchStatus } from './cli/status-watch.js';
import { runInjectWebhook } from './inject/run.js';
import { configJsonSchema } from './config/json-schema.js';
import { loadConfigFile } from './config/load.js';
import { ConfigError, StoreError } from './errors.js';
import { createLogger } from './log.js';

export async function main(argv: readonly string[]): Promise<number> {
  // The injection webhook takes no proxy config and has flags of its own.
  if (argv[0] === 'inject-webhook') return runInjectWebhook(argv.slice(1));
  if (argv[0] === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  let args;
  try {
    args = parseArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`oauth-sidecar: ${error.message}\n\n${usage.main}\n`);
    return 2;
  }
  if (args.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (args.help) {
    process.stdout.write(`${argv.length > 1 && argv[0] !== 'help' ? usage[args.command] : usage.main}\n`);
    return 0;
  }

  let config;
  try {
    config = loadConfigFile(args.configPath);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`oauth-sidecar: ${error.message}\n`);
    return 1;
  }
  if (args.command === 'seed') return seed(config, args);
  if (args.command === 'login') return login(config, args);
  if (args.command === 'status') return status(config, args);
  if (args.command === 'check') {
    process.stdout.write(`${describeConfig(config)}\n`);
    return 0;
  }
  return serve(config);
}

async function serve(config: ReturnType<typeof loadConfigFile>): Promise<number> {
  const logger = createLogger({ level: config.log.level });
  const app = createApp(config, { logger, version: packageVersion() });
  // The handlers go in before start(): a signal that arrives while starting, or just after the "started"
  // line (start-up work such as the first token request may still hold the event loop), must drain and exit 0, not
  // kill the process with the default action.
  let starting: Promise<unknown> = Promise.resolve();
  const stopped = stopOnSignal(logger, () => starting.catch(() => undefined).then(() => app.stop()));
  // A bug must not take the process down silently: log it (the message only, never request data),
  // flush, and exit so the supervisor restarts us with the durable store intact.
  const onFatal = (error: unknown) => {
    logger.fatal({ event: 'crashed', err: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, 'unexpected error; exiting');
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
  return stopped;
}


async function seed(config: ReturnType<typeof loadConfigFile>, args: ParsedArgs): Promise<number> {
  const upstream = args.positional[0];
  if (!upstream || args.positional.length > 1) {
    process.stderr.write(`oauth-sidecar: seed takes one upstream name\n\n${usage.seed}\n`);
    return 2;
  }
  if (process.stdin.isTTY) process.stderr.write(`Paste the refresh token for ${upstream}, then press Enter and Ctrl-D:\n`);
  try {
    const refreshToken = await readStdin(process.stdin);
    process.stdout.write(`${await seedRefreshToken(config, { upstream, force: args.force, refreshToken })}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function status(config: ReturnType<typeof loadConfigFile>, args: ParsedArgs): Promise<number> {
  try {
    if (args.watch) return await watch(config, args);
    const report = await collectStatus(config, args.admin);
    process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatStatusTable(report)}\n`);
    return report.upstreams.every((upstream) => upstream.state === 'ok') ? 0 : 1;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function watch(config: ReturnType<typeof loadConfigFile>, args: ParsedArgs): Promise<number> {
  // A named proxy that is not up yet (or restarting) shows as an error frame until it answers.
  const source = args.admin ? adminStatusSource(args.admin) : await openStatusSource(config, undefined);
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A reader that goes away (`status --watch | head`) ends the watch instead of an EPIPE crash.
  process.stdout.once('error', stop);
  try {
    await watchStatus(source, { json: args.json, out: process.stdout, signal: interrupted.signal });
    return 0;
  } finally {
    await source.close();
  }
}

async function login(config: ReturnType<typeof loadConfigFile>, args: ParsedArgs): Promise<number> {
  const upstream = args.positional[0];
  if (!upstream || args.positional.length > 1) {
    process.stderr.write(`oauth-sidecar: login takes one upstream name\n\n${usage.login}\n`);
    return 2;
  }
  try {
    const line = await runLogin(config, {
      upstream,
      out: process.stderr,
      ...(args.listen ? { listen: args.listen } : {}),
      ...(args.redirectUri ? { redirectUri: args.redirectUri } : {}),
      ...(args.timeoutSeconds ? { timeoutMs: args.timeoutSeconds * 1000 } : {}),
    });
    process.stdout.write(`${line}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

function isListenError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL';
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
