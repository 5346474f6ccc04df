/**
 * Picks up a rotated serving certificate (cert-manager, a re-created Secret) without a restart. The
 * mounted files are read again every interval and, when they changed, swapped in for new connections.
 * Kubernetes updates a Secret volume by swapping a symlink, which file watchers can miss; reading two
 * small files on a timer cannot. A pair caught half-written (the new certificate with the old key) does not
 * load: the old certificate keeps serving and the pair is tried again on the next tick.
 */
import { describeCertificate } from '../net/describe-certificate.js';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';

export interface TlsReloadOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly intervalMs: number;
  /** What is serving now. */
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  /** Swaps the pair in; throws when it does not load (e.g. "key values mismatch"). */
  apply(certPem: Buffer, keyPem: Buffer): void;
  readonly logger: Logger;
}

/** Starts polling; returns the function that stops it. */
export function reloadTlsOnChange(options: TlsReloadOptions): () => void {
  const { logger } = options;
  let serving = { certPem: options.certPem, keyPem: options.keyPem };
  let lastFailed: { certPem: Buffer; keyPem: Buffer } | undefined;
  let checking = false;

  const check = async (): Promise<void> => {
    if (checking) return;
    checking = true;
    try {
      const [certPem, keyPem] = await Promise.all([readFile(options.certFile), readFile(options.keyFile)]);
      if (certPem.equals(serving.certPem) && keyPem.equals(serving.keyPem)) return;
      const sameAsFailed = lastFailed !== undefined && certPem.equals(lastFailed.certPem) && keyPem.equals(lastFailed.keyPem);
      try {
        options.apply(certPem, keyPem);
      } catch (error) {
        // Said once per pair: a pair that stays broken must not fill the log every tick.
        if (!sameAsFailed)
          logger.warn(
            { event: 'tls_reload_failed', reason: error instanceof Error ? error.message : String(error) },
            'the changed TLS files do not load; still serving the previous certificate',
          );
        lastFailed = { certPem, keyPem };
        return;
      }
      serving = { certPem, keyPem };
      lastFailed = undefined;
      logger.info({ event: 'tls_reloaded', ...describeCertificate(certPem) }, 'serving the rotated TLS certificate');
    } catch (error) {
      // Mid-rotation a file can be missing for a moment: the next tick reads it again. The path only, never content.
      logger.warn(
        { event: 'tls_reload_failed', reason: (error as NodeJS.ErrnoException).code ?? 'read error' },
        `cannot read ${options.certFile} or ${options.keyFile}`,
      );
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
