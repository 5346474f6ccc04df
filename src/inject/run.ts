/**
 * Serves the sidecar injector until SIGTERM or SIGINT (`oauth-sidecar inject-webhook`, whose command line
 * is in src/cli/commands/inject-webhook.ts). The key is read from a file (a mounted Secret), never
 * taken from the command line.
 */
import { readFileSync } from 'node:fs';
import { stopOnSignal } from '../signals.js';
import { createLogger } from '../log.js';
import { describeCertificate } from '../net/describe-certificate.js';
import { reloadTlsOnChange } from './tls-reload.js';
import { createInjectWebhook } from './webhook-server.js';

export const defaultListen = '0.0.0.0:8443';
/** What deploy/build-image.sh tags by default; set --image to your registry's copy. */
export const defaultImage = 'oauth-sidecar:0.1.0';

/** What the webhook runs with. */
export interface InjectWebhookArgs {
  readonly certFile: string;
  readonly keyFile: string;
  readonly host: string;
  readonly port: number;
  readonly image: string;
  readonly logLevel: string;
  readonly tlsReloadSeconds: number;
}

/** Runs the webhook until SIGTERM/SIGINT; resolves to the exit code. */
export async function serveInjectWebhook(args: InjectWebhookArgs): Promise<number> {
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
      ? reloadTlsOnChange({
          certFile: args.certFile,
          keyFile: args.keyFile,
          intervalMs: args.tlsReloadSeconds * 1000,
          certPem,
          keyPem,
          apply: webhook.setCertificate,
          logger,
        })
      : () => undefined;
  return stopOnSignal(logger, () => {
    stopReloading();
    return webhook.stop();
  });
}
