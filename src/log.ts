/**
 * The pino logger. Code logs chosen fields only, never raw headers or token records; `redact` is the
 * second net for any field name that could carry a credential.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

const redactedPaths = [
  'authorization',
  'cookie',
  'token',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'password',
  'tppToken',
  'access_token',
  'refresh_token',
  'client_secret',
  '*.authorization',
  '*.cookie',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.clientSecret',
  '*.password',
  '*.tppToken',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["proxy-authorization"]',
  '*.headers["set-cookie"]',
];

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout (asynchronously buffered) when omitted. */
  destination?: DestinationStream;
}

/** Where a logger made by createLogger writes; child loggers inherit it. */
const DESTINATION = Symbol('oauth-sidecar log destination');

/** The destination a logger made by createLogger writes to (for lines built by hand, see proxy/access-log.ts). */
export function destinationOf(logger: Logger): DestinationStream | undefined {
  return (logger as Logger & { [DESTINATION]?: DestinationStream })[DESTINATION];
}

export function createLogger(options: LoggerOptions): Logger {
  // Buffered: lines leave in 4 KiB writes, and at least every 250 ms, instead of one write per line.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 });
  const logger = pino(
    {
      level: options.level,
      base: { service: 'oauth-sidecar' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  // Our own symbol, not pino's private one: children are created from the logger, so they see it too.
  Object.defineProperty(logger, DESTINATION, { value: destination });
  return logger;
}
