/**
 * The pino logger. Code logs chosen fields only, never raw headers or token records; `redact` is the
 * second net for any field name that could carry a credential.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

const redactedPaths = [
  'authorization', 'cookie', 'token', 'accessToken', 'refreshToken', 'clientSecret', 'password', 'tppToken',
  'access_token', 'refresh_token', 'client_secret',
  '*.authorization', '*.cookie', '*.token', '*.accessToken', '*.refreshToken', '*.clientSecret', '*.password', '*.tppToken',
  '*.access_token', '*.refresh_token', '*.client_secret',
  'headers.authorization', 'headers.cookie', 'headers["proxy-authorization"]', 'headers["set-cookie"]',
  '*.headers.authorization', '*.headers.cookie', '*.headers["proxy-authorization"]', '*.headers["set-cookie"]',
];

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout (asynchronously buffered) when omitted. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  // Buffered: lines leave in 4 KiB writes, and at least every 250 ms, instead of one write per line.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 });
  return pino(
    {
      level: options.level,
      base: { service: 'oauth-sidecar' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
