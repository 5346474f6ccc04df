/**
 * The undici dispatcher for one peer (a route's Pool, a token client's Agent), built on the peer's
 * connector, and kept current when its TLS files rotate: they are read again every reloadIntervalMs and, when
 * they changed and load, a new dispatcher takes the next requests while the old one finishes the requests it
 * has and closes. Kubernetes swaps Secret volumes through a symlink, which file watchers can miss; reading
 * a few small files on a timer cannot. Files caught half-written do not load and are tried on the next tick.
 */
import type { Dispatcher, buildConnector } from 'undici';
import type { EgressConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { createConnector, type Connector } from './egress-connector.js';
import { describeCertificate } from './describe-certificate.js';
import { readTlsFiles, readTlsFilesSync, sameTlsFiles, tlsConnectOptions, type TlsFiles } from './tls-material.js';

export interface EgressDispatcher {
  /** The dispatcher for the next request; read it per request, it changes when certificates rotate. */
  readonly current: Dispatcher;
  close(): Promise<void>;
}

export interface EgressDispatcherOptions {
  readonly egress: EgressConfig;
  /** "upstream apiax" or "the token endpoint of apiax", for messages. */
  readonly peer: string;
  readonly connectTimeoutMs: number;
  /** Builds the Pool or Agent with the peer's own limits around this connect function. */
  readonly create: (connect: buildConnector.connector) => Dispatcher;
  readonly logger: Logger | undefined;
}

/** Throws ConfigError (a start-up error) when the peer's TLS files cannot be read or do not load. */
export function createEgressDispatcher(options: EgressDispatcherOptions): EgressDispatcher {
  const { egress, logger } = options;
  const tls = egress.tls;
  const files = tls ? readTlsFilesSync(tls) : undefined;

  const build = (from: TlsFiles | undefined): { connector: Connector; dispatcher: Dispatcher } => {
    const connector = createConnector({
      egress,
      peer: options.peer,
      timeoutMs: options.connectTimeoutMs,
      tls: tls && from ? tlsConnectOptions(tls, from) : undefined,
    });
    return { connector, dispatcher: options.create(connector.connect) };
  };

  let active = build(files);

  let timer: NodeJS.Timeout | undefined;
  if (tls && files) {
    let inUse = files;
    let lastRefused: TlsFiles | undefined;
    let lastProblem: string | undefined;
    // Said once per problem: a rotation that stays broken must not fill the log every tick.
    const refuse = (problem: string) => {
      if (problem !== lastProblem)
        logger?.warn(
          { event: 'tls_client_reload_failed', peer: options.peer, reason: problem },
          `${options.peer}: the changed TLS files do not load; still using the previous ones`,
        );
      lastProblem = problem;
    };
    const check = async () => {
      let next: TlsFiles;
      try {
        next = await readTlsFiles(tls);
      } catch (error) {
        if (error instanceof ConfigError) return refuse(error.problems.join('; '));
        throw error;
      }
      if (sameTlsFiles(next, inUse) || (lastRefused !== undefined && sameTlsFiles(next, lastRefused))) return;
      let replacement: ReturnType<typeof build>;
      try {
        replacement = build(next);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        lastRefused = next;
        return refuse(error.problems.join('; '));
      }
      const previous = active;
      active = replacement;
      inUse = next;
      lastRefused = lastProblem = undefined;
      retire(previous, logger);
      logger?.info(
        {
          event: 'tls_client_reloaded',
          peer: options.peer,
          setting: tls.setting,
          certificate: next.cert && describeCertificate(next.cert),
        },
        `${options.peer}: using the rotated TLS files from ${tls.setting}`,
      );
    };
    let checking = false;
    timer = setInterval(() => {
      if (checking) return;
      checking = true;
      check()
        .catch((error: unknown) => logger?.error({ event: 'tls_client_reload_failed', err: error }, 'reading the TLS files failed'))
        .finally(() => (checking = false));
    }, tls.reloadIntervalMs);
    timer.unref();
  }

  return {
    get current() {
      return active.dispatcher;
    },
    async close() {
      clearInterval(timer);
      await active.dispatcher.close();
      await active.connector.close();
    },
  };
}

/** The old dispatcher finishes what it was given, then closes with its connector. */
function retire(previous: { connector: Connector; dispatcher: Dispatcher }, logger: Logger | undefined): void {
  previous.dispatcher
    .close()
    .then(() => previous.connector.close())
    .catch((error: unknown) => logger?.debug({ event: 'dispatcher_retire_failed', err: error }, 'closing the previous connections failed'));
}
