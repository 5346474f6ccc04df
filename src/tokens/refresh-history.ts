/**
 * What one upstream's token has been through lately: the last refresh (when, outcome, latency) and how
 * many refreshes and replays the last hour saw. Feeds the Prometheus counters too, so the status page
 * and the metrics never disagree about what was counted.
 */
import type { RefreshOutcome, ReplayOutcome, TokenMetrics } from './token-metrics.js';
import { systemClock, type Clock } from './clock.js';
import { RecentCount } from './recent-count.js';
import type { LastRefresh, RecentActivity } from './token-status.js';

export type { ReplayOutcome } from './token-metrics.js';

export class RefreshHistory {
  readonly #upstream: string;
  readonly #metrics: TokenMetrics;
  readonly #clock: Clock;
  #last: LastRefresh | undefined;
  readonly #refreshes = new RecentCount();
  readonly #failedRefreshes = new RecentCount();
  readonly #replays = new RecentCount();
  readonly #rejectedReplays = new RecentCount();

  constructor(upstream: string, metrics: TokenMetrics, clock: Clock = systemClock) {
    this.#upstream = upstream;
    this.#metrics = metrics;
    this.#clock = clock;
  }

  /** A refresh attempt ended. 'adopted' means another replica's newer record was taken instead of a token call. */
  refreshEnded(outcome: RefreshOutcome, reason: string, latencyMs: number, error?: string): void {
    this.#metrics.refreshEnded(this.#upstream, outcome, reason, outcome === 'adopted' ? undefined : latencyMs / 1000);
    if (outcome !== 'adopted') {
      this.#refreshes.add(this.#clock.now());
      if (outcome !== 'success') this.#failedRefreshes.add(this.#clock.now());
    }
    this.#last = { at: new Date(this.#clock.now()).toISOString(), outcome, reason, latencyMs, ...(error ? { error } : {}) };
  }

  replayEnded(outcome: ReplayOutcome): void {
    this.#metrics.replayEnded(this.#upstream, outcome);
    if (outcome === 'no_new_token') return;
    this.#replays.add(this.#clock.now());
    if (outcome === 'rejected') this.#rejectedReplays.add(this.#clock.now());
  }

  get last(): LastRefresh | undefined {
    return this.#last;
  }

  lastHour(now = this.#clock.now()): RecentActivity {
    return {
      refreshes: this.#refreshes.total(now),
      failedRefreshes: this.#failedRefreshes.total(now),
      replays: this.#replays.total(now),
      rejectedReplays: this.#rejectedReplays.total(now),
    };
  }
}
