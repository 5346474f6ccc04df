/**
 * `oauth-sidecar inject-webhook --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--image IMAGE]`:
 * serves the sidecar injector until SIGTERM or SIGINT. The key is read from a file (a mounted Secret),
 * never taken from the command line.
 */
import { readFileSync } from 'node:fs';
import { stopOnSignal } from '../cli/signals.js';
import { createLogger } from '../log.js';
import { describeCertificate, reloadTlsOnChange } from './tls-reload.js';
import { createInjectWebhook } from './webhook-server.js';

export const defaultListen = '0.0.0.0:8443';
/** What deploy/build-image.sh tags by default; set --image to your registry's copy. */
export const defaultImage = 'oauth-sidecar:0.1.0';

export const injectWebhookUsage = `oauth-sidecar inject-webhook --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [--image IMAGE] [--tls-reload-seconds N]

Serves the Kubernetes mutating admission webhook that adds the proxy to pods annotated
oauth-sidecar.io/inject: "true" (see deploy/kubernetes/webhook/). POST /mutate, GET /healthz, HTTPS only.
  --tls-cert FILE   PEM serving certificate (chain) for the webhook Service's DNS name
  --tls-key FILE    PEM private key
  --listen ADDR     default ${defaultListen}
  --image IMAGE     the sidecar image to inject (default $OAUTH_SIDECAR_IMAGE, else ${defaultImage})
  --log-level LVL   default info
  --tls-reload-seconds N   how often the TLS files are read again, so a rotated certificate is
                    served without a restart (default 10; 0: never)`;

export interface InjectWebhookArgs {
  readonly certFile: string;
  readonly keyFile: string;
  readonly host: string;
  readonly port: number;
  readonly image: string;
  readonly logLevel: string;
  readonly tlsReloadSeconds: number;
  readonly help: boolean;
}

export class InjectUsageError extends Error {
  override readonly name = 'InjectUsageError';
}

export function parseInjectWebhookArgs(argv: readonly string[], env: NodeJS.ProcessEnv): InjectWebhookArgs {
  const values = new Map<string, string>();
  let help = false;
  const rest = [...argv];
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    // Only the name in the message: an option's value must not be echoed into a terminal or log collector.
    if (!['--tls-cert', '--tls-key', '--listen', '--image', '--log-level', '--tls-reload-seconds'].includes(name)) {
      throw new InjectUsageError(`unknown option "${name}"`);
    }
    const value = eq < 0 ? rest.shift() : arg.slice(eq + 1);
    if (!value) throw new InjectUsageError(`${name} needs a value`);
    values.set(name, value);
  }
  const listen = values.get('--listen') ?? defaultListen;
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(colon + 1));
  if (!help) {
    const missing = ['--tls-cert', '--tls-key'].filter((n) => !values.has(n));
    if (missing.length > 0) throw new InjectUsageError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
    if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InjectUsageError('--listen must be HOST:PORT, e.g. 0.0.0.0:8443');
    }
  }
  const tlsReloadSeconds = Number(values.get('--tls-reload-seconds') ?? 10);
  if (!Number.isFinite(tlsReloadSeconds) || tlsReloadSeconds < 0) throw new InjectUsageError('--tls-reload-seconds takes a number of seconds (0: never)');
  return {
    certFile: values.get('--tls-cert') ?? '',
    keyFile: values.get('--tls-key') ?? '',
    host,
    port,
    image: values.get('--image') ?? (env.OAUTH_SIDECAR_IMAGE || defaultImage),
    logLevel: values.get('--log-level') ?? 'info',
    tlsReloadSeconds,
    help,
  };
}

/** Runs the webhook until SIGTERM/SIGINT; resolves to the exit code. `argv` is what follows the command name. */
export async function runInjectWebhook(argv: string[]): Promise<number> {
  let args: InjectWebhookArgs;
  try {
    args = parseInjectWebhookArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof InjectUsageError)) throw error;
    process.stderr.write(`oauth-sidecar inject-webhook: ${error.message}\n\n${injectWebhookUsage}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${injectWebhookUsage}\n`);
    return 0;
  }
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

