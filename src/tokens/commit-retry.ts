/**
 * Keeps writing back a token pair that only this replica holds (the store did not take it), quickly —
 * its refresh token is the only unspent one — while the lease is renewed, until it lands or a newer live
 * record makes it moot. Nothing else happens to the credential here meanwhile (see TokenManager).
 */
import type { Logger } from '../log.js';
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import type { Clock, Timer } from './clock.js';
import { commitRecord } from './commit-record.js';
import type { Lease } from './refresh-lease.js';

export interface CommitRetryOptions {
  readonly deps: { readonly name: string; readonly store: TokenStore; readonly log: Logger; readonly clock: Clock };
  readonly expectedGeneration: number;
  readonly record: TokenRecord;
  readonly lease: Lease | undefined;
  onAttemptFailed(): void;
  onLanded(record: TokenRecord): void;
  onSuperseded(stored: TokenRecord | undefined): void;
}

/** Retried writes wait 250 ms, 500 ms, 1 s, then every 2 s. */
export function commitRetryDelay(attempt: number): number {
  return Math.min(2_000, 125 * 2 ** attempt);
}

export function retryCommit(options: CommitRetryOptions): { cancel(): void } {
  const { deps } = options;
  let timer: Timer | undefined;
  let cancelled = false;

  const attempt = (n: number): void => {
    timer = deps.clock.after(commitRetryDelay(n), () => {
      void (async () => {
        try {
          const outcome = await commitRecord(deps, options.expectedGeneration, options.record);
          if (cancelled) return;
          await options.lease?.release();
          if (outcome.kind === 'landed') {
            deps.log.info(
              { event: 'store_write_recovered', generation: outcome.record.generation },
              'stored the token record after retrying',
            );
            options.onLanded(outcome.record);
          } else {
            deps.log.error(
              { event: 'commit_stale', generation: options.record.generation },
              'a newer record was stored while the write was retried; adopting it',
            );
            options.onSuperseded(outcome.stored);
          }
        } catch {
          if (cancelled) return;
          options.onAttemptFailed();
          attempt(n + 1);
        }
      })();
    });
  };
  attempt(1);

  return {
    cancel() {
      cancelled = true;
      timer?.cancel();
      void options.lease?.release();
    },
  };
}
