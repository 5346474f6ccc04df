/**
 * The TLS options for connecting to one peer, from the files its `tls` settings name: the CA bundle that
 * replaces the system store, and the client certificate and key for mutual TLS. A set of files is only
 * taken when Node accepts it as a whole (createSecureContext): a key that does not match its certificate,
 * or a wrong passphrase, is refused here with the setting that fixes it, not at the first connection.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type ConnectionOptions } from 'node:tls';
import type { TlsConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';

/** The contents of the files a TlsConfig names (each undefined when not configured). */
export interface TlsFiles {
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
}

const fileKeys = [
  ['ca', 'caFile'],
  ['cert', 'certFile'],
  ['key', 'keyFile'],
] as const;

export function readTlsFilesSync(tls: TlsConfig): TlsFiles {
  return readEach(tls, (path) => readFileSync(path));
}

/** The same, off the event loop, for the periodic re-read. */
export async function readTlsFiles(tls: TlsConfig): Promise<TlsFiles> {
  const read = await Promise.all(fileKeys.map(([, setting]) => readOptional(tls, setting)));
  return { ca: read[0], cert: read[1], key: read[2] };
}

export function sameTlsFiles(a: TlsFiles, b: TlsFiles): boolean {
  return fileKeys.every(([key]) => (a[key] === undefined ? b[key] === undefined : b[key] !== undefined && a[key].equals(b[key])));
}

/**
 * The options handed to tls.connect for this peer. Throws ConfigError when Node refuses them (a
 * malformed PEM, a key that does not match, a wrong passphrase), naming the setting; never a file's content.
 */
export function tlsConnectOptions(tls: TlsConfig, files: TlsFiles): ConnectionOptions {
  const options: ConnectionOptions = {
    minVersion: tls.minVersion,
    ...(files.ca && { ca: files.ca }),
    ...(files.cert && { cert: files.cert }),
    ...(files.key && { key: files.key }),
    ...(tls.passphrase && { passphrase: tls.passphrase.reveal() }),
    ...(tls.servername && { servername: tls.servername }),
  };
  try {
    createSecureContext(options);
  } catch (error) {
    throw tlsProblem(`${tls.setting}: ${describeLoadFailure(tls, error)}`);
  }
  return options;
}

function readEach(tls: TlsConfig, read: (path: string) => Buffer): TlsFiles {
  const contents = fileKeys.map(([, setting]) => {
    const path = tls[setting];
    if (path === undefined) return undefined;
    try {
      return read(path);
    } catch (error) {
      throw tlsProblem(`${tls.setting}.${setting}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });
  return { ca: contents[0], cert: contents[1], key: contents[2] };
}

async function readOptional(tls: TlsConfig, setting: (typeof fileKeys)[number][1]): Promise<Buffer | undefined> {
  const path = tls[setting];
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (error) {
    throw tlsProblem(`${tls.setting}.${setting}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function describeLoadFailure(tls: TlsConfig, error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (/bad decrypt|bad password|interrupted or cancelled/i.test(text))
    return `keyFile does not decrypt with ${tls.passphrase ? 'the passphrase' : 'no passphrase (set passphraseFile)'}`;
  if (/key values mismatch/i.test(text)) return 'certFile and keyFile do not belong together';
  if (/no start line|bad base64|PEM/i.test(text)) return `a file is not PEM (${text})`;
  return `the files do not load (${text})`;
}

/** Files that do not read or load are a configuration problem: one, naming the setting. */
function tlsProblem(problem: string): ConfigError {
  return new ConfigError([problem]);
}
