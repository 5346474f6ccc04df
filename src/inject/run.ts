/**
 * `inject-webhook`: serves the sidecar injector until SIGTERM or SIGINT. The key is read from a file (a
 * mounted Secret), never taken from the command line. Its options are a command of the CLI's table.
 */
import { readFileSync } from 'node:fs';
import { defineCommand } from '../cli/command-spec.js';
import { parseCommandLine } from '../cli/args.js';
import { packageVersion } from '../cli/package-version.js';
import { runCommand } from '../cli/run-command.js';
import { stopOnSignal } from '../cli/signals.js';
import { UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { describeCertificate, reloadTlsOnChange } from './tls-reload.js';
import { createInjectWebhook } from './webhook-server.js';

export const defaultListen = '0.0.0.0:8443';
/** What deploy/build-image.sh tags by default; set --image to your registry's copy. */
export const defaultImage = 'oauth-sidecar:0.1.0';

export interface InjectWebhookArgs {
  readonly certFile: string;
  readonly keyFile: string;
  readonly host: string;
  readonly port: number;
  readonly image: string;
  readonly logLevel: string;
  readonly tlsReloadSeconds: number;
}

export const injectWebhookCommand = defineCommand({
  name: 'inject-webhook',
  summary: 'the Kubernetes sidecar injection webhook',
  options: {
    'tls-cert': {
      type: 'string',
      value: 'FILE',
      needs: 'a file path',
      required: true,
      description: "PEM serving certificate (chain) for the webhook Service's DNS name",
    },
    'tls-key': { type: 'string', value: 'FILE', needs: 'a file path', required: true, description: 'PEM private key (a file, never the key itself)' },
    listen: { type: 'string', value: 'HOST:PORT', needs: 'HOST:PORT, e.g. 0.0.0.0:8443', default: defaultListen, description: 'where to listen' },
    image: {
      type: 'string',
      value: 'IMAGE',
      needs: 'an image reference',
      description: 'the sidecar image to inject',
      defaultText: `$OAUTH_SIDECAR_IMAGE, else ${defaultImage}`,
    },
    'log-level': { type: 'string', value: 'LEVEL', needs: 'a log level, e.g. info', default: 'info', description: 'fatal, error, warn, info, debug or trace' },
    'tls-reload-seconds': {
      type: 'string',
      value: 'SECONDS',
      needs: 'a number of seconds',
      default: '10',
      description: 'how often to read the TLS files again, so that a rotated certificate is served without a restart; 0: never',
    },
  },
  description: () => `Serves the Kubernetes mutating admission webhook that adds the proxy to pods annotated
oauth-sidecar.io/inject: "true" (see deploy/kubernetes/webhook/). POST /mutate, GET /healthz, HTTPS
only.`,
  exitStatus: '0 after SIGTERM or SIGINT, 1 when the TLS files cannot be read or it cannot start',
  interpret: (values, _operands, env): InjectWebhookArgs => {
    const colon = values.listen.lastIndexOf(':');
    const host = values.listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(values.listen.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--listen must be HOST:PORT, e.g. 0.0.0.0:8443');
    const tlsReloadSeconds = Number(values['tls-reload-seconds']);
    if (!Number.isFinite(tlsReloadSeconds) || tlsReloadSeconds < 0) throw new UsageError('--tls-reload-seconds takes a number of seconds (0: never)');
    return {
      certFile: values['tls-cert'],
      keyFile: values['tls-key'],
      host,
      port,
      image: values.image ?? (env.OAUTH_SIDECAR_IMAGE || defaultImage),
      logLevel: values['log-level'],
      tlsReloadSeconds,
    };
  },
  run: (args) => serveInjectWebhook(args),
});

/**
 * The arguments of a run (what follows the command name) as the webhook uses them; throws UsageError.
 * --help and --version are not a run: runInjectWebhook answers them.
 */
export function parseInjectWebhookArgs(argv: readonly string[], env: NodeJS.ProcessEnv): InjectWebhookArgs {
  const line = parseCommandLine(injectWebhookCommand, argv);
  if (line.help || line.version) throw new UsageError('--help and --version print, they do not run the webhook');
  return injectWebhookCommand.interpret(line, env);
}

/** Runs the webhook until SIGTERM/SIGINT; resolves to the exit code. `argv` is what follows the command name. */
export function runInjectWebhook(argv: readonly string[]): Promise<number> {
  return runCommand(injectWebhookCommand, argv, { program: 'oauth-sidecar', env: process.env, version: packageVersion() });
}

async function serveInjectWebhook(args: InjectWebhookArgs): Promise<number> {
  let certPem: Buffer;
  let keyPem: Buffer;
  try {
    certPem = readFileSync(args.certFile);
    keyPem = readFileSync(args.keyFile);
  } catch (error) {
    // The path only: never the file's content.
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    process.stderr.write(`oauth-sidecar inject-webhook: cannot read TLS files (${code}): ${args.certFile}, ${args.keyFile}\n`);
    return 1;
  }
  const logger = createLogger({ level: args.logLevel });
  let webhook;
  try {
    webhook = createInjectWebhook({ certPem, keyPem, image: args.image, host: args.host, port: args.port, logger });
    await webhook.start();
  } catch (error) {
    // TLS errors name the problem (e.g. "key values mismatch"), never key material.
    const message = error instanceof Error ? error.message : String(error);
    logger.fatal({ event: 'start_failed' }, `cannot start: ${message}`);
    logger.flush();
    process.stderr.write(`oauth-sidecar inject-webhook: cannot start: ${message}\n`);
    return 1;
  }
  const { address, port } = webhook.address();
  logger.info({ event: 'started', address, port, image: args.image, ...describeCertificate(certPem) }, 'inject webhook listening');
  const stopReloading =
    args.tlsReloadSeconds > 0
      ? reloadTlsOnChange({ certFile: args.certFile, keyFile: args.keyFile, intervalMs: args.tlsReloadSeconds * 1000, certPem, keyPem, apply: webhook.setCertificate, logger })
      : () => undefined;
  return stopOnSignal(logger, () => {
    stopReloading();
    return webhook.stop();
  });
}

