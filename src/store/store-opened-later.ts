/**
 * A store that could not be opened at start-up for a reason that passes (a pod starting beside its Redis,
 * a Redis being restarted, a token file whose lease another proxy still holds): the proxy starts anyway,
 * unready, instead of exiting into a crash loop. This stands in
 * for the real store and keeps trying to open it, backing off from 250 ms to 5 s. Until it opens, every
 * operation fails at once with a StoreError that says why; listeners registered meanwhile are attached
 * to the real store when it opens, and each is told about every key it may have missed.
 */
import { StoreError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RecordChangeListener, TokenStore } from './token-store.js';

export interface StoreOpenedLaterOptions {
  /** Opens the real store; a StoreError marked retryable means "try again later". */
  open(): Promise<TokenStore>;
  /** Where the store points (never a secret), until the real store can say it itself. */
  description: string;
  /** Why the first attempt failed. */
  firstError: StoreError;
  logger: Logger;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

export function storeOpenedLater(options: StoreOpenedLaterOptions): TokenStore {
  const { logger } = options;
  let real: TokenStore | undefined;
  let lastError = options.firstError.message;
  let closed = false;
  let wake: (() => void) | undefined;
  const listeners = new Set<RecordChangeListener>();
  const detach = new Map<RecordChangeListener, () => void>();

  const attach = (store: TokenStore, listener: RecordChangeListener) => detach.set(listener, store.subscribe(listener));

  async function keepTrying(): Promise<void> {
    for (let attempt = 1, delay = FIRST_DELAY_MS; !closed; attempt++, delay = Math.min(delay * 2, MAX_DELAY_MS)) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, delay).unref();
      });
      if (closed) return;
      try {
        const store = await options.open();
        if (closed) return void (await store.close());
        real = store;
        for (const listener of listeners) attach(store, listener);
        logger.info(
          { event: 'store_connected', store: store.description, attempts: attempt + 1 },
          `token store available: ${store.description}`,
        );
        // Whoever waited on the store re-reads now rather than at its next retry; one listener's error must
        // not count as a failed open (that would open a second store).
        for (const listener of listeners) {
          try {
            listener('*', -1);
          } catch (error) {
            logger.error(
              { event: 'store_listener_failed', err: error instanceof Error ? error.message : String(error) },
              'a store listener failed',
            );
          }
        }
        return;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Logged when the reason changes and then every tenth attempt: a long outage must not flood the log.
        if (message !== lastError || attempt % 10 === 0) {
          const level = error instanceof StoreError && !error.retryable ? 'error' : 'warn';
          logger[level](
            { event: 'store_unreachable', attempts: attempt + 1, retryInMs: Math.min(delay * 2, MAX_DELAY_MS) },
            `token store still not available: ${message}`,
          );
        }
        lastError = message;
      }
    }
  }

  logger.warn(
    { event: 'store_unreachable', attempts: 1, retryInMs: FIRST_DELAY_MS },
    `token store not available at start-up: ${lastError}; starting unready and retrying`,
  );
  void keepTrying();

  const unavailable = (): Promise<never> =>
    Promise.reject(new StoreError(`token store not available yet: ${lastError}`, { retryable: true }));
  return {
    get description() {
      return real?.description ?? options.description;
    },
    read: (key) => (real ? real.read(key) : unavailable()),
    compareAndSet: (key, expected, next) => (real ? real.compareAndSet(key, expected, next) : unavailable()),
    acquireLock: (key, owner, ttl) => (real ? real.acquireLock(key, owner, ttl) : unavailable()),
    renewLock: (key, owner, ttl) => (real ? real.renewLock(key, owner, ttl) : unavailable()),
    releaseLock: (key, owner) => (real ? real.releaseLock(key, owner) : unavailable()),
    subscribe(listener) {
      listeners.add(listener);
      if (real) attach(real, listener);
      return () => {
        listeners.delete(listener);
        detach.get(listener)?.();
        detach.delete(listener);
      };
    },
    async close() {
      closed = true;
      wake?.();
      await real?.close();
    },
  };
}
