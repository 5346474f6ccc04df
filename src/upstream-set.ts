/**
 * The live upstreams of one app: per upstream its token client, token manager, connection pools and route.
 * A config reload is first prepared (every new part built, so a TLS file that does not load refuses the
 * whole reload before anything changes), then applied in one step: new requests see the new routes at once,
 * requests in flight finish on the parts they started with, and the parts nobody uses any more close after
 * them. An upstream whose auth section did not change keeps its token manager, and so its token.
 */
import type { Metrics } from './admin/metrics.js';
import { settingsKey } from './config/settings-key.js';
import type { UpstreamConfig } from './config/types.js';
import type { Logger } from './log.js';
import { createRoute, createUpstreamPools, type Route } from './proxy/route.js';
import type { TokenStore } from './store/token-store.js';
import { createOAuth2Client, type TokenClient } from './tokens/providers/oauth2-client.js';
import { TokenManager } from './tokens/token-manager.js';

interface Credential {
  readonly client: TokenClient;
  readonly manager: TokenManager;
  /** settingsKey of the auth section: equal means the manager (and its token) can stay. */
  readonly key: string;
}

interface UpstreamParts {
  readonly name: string;
  readonly credential: Credential;
  readonly route: Route;
  /** settingsKey of the whole upstream and the inbound key header: equal means nothing changed. */
  readonly key: string;
}

export interface UpstreamSetDeps {
  readonly store: TokenStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly owner: string;
}

/** What a reload changes, by upstream name. */
export interface UpstreamChanges {
  readonly added: string[];
  readonly removed: string[];
  /** Changed with a new token manager (the auth section changed). */
  readonly changed: string[];
  /** Changed, keeping the token manager and its token (only routing, limits, TLS or proxy of the target changed). */
  readonly changedTokensKept: string[];
  readonly unchanged: string[];
}

/** The parts a new config needs, built and not yet in use. */
export interface PreparedUpstreams {
  readonly next: readonly UpstreamParts[];
  readonly changes: UpstreamChanges;
  /**
   * Starts the new token managers, then makes the new routes current and calls `switchTo` in the same
   * synchronous step (the caller swaps in what resolves them), then retires what is no longer used.
   */
  apply(switchTo: () => void): Promise<void>;
  /** Throws away what was built (the reload is refused). */
  discard(): Promise<void>;
}

export class UpstreamSet {
  readonly #deps: UpstreamSetDeps;
  #parts: readonly UpstreamParts[] = [];
  /** Token managers made so far: each one after the first set gets an owner id of its own (see #createCredential). */
  #managersMade = 0;
  #firstSetDone = false;
  /** Parts retired by a reload, closing once their requests are done. */
  readonly #retiring = new Set<Promise<void>>();

  constructor(deps: UpstreamSetDeps) {
    this.#deps = deps;
  }

  get routes(): Route[] {
    return this.#parts.map((parts) => parts.route);
  }

  get managers(): TokenManager[] {
    return this.#parts.map((parts) => parts.credential.manager);
  }

  /** Builds what `upstreams` needs beyond the current parts. Throws ConfigError, having built nothing lasting. */
  prepare(upstreams: readonly UpstreamConfig[], inboundKeyHeader: string): PreparedUpstreams {
    const current = new Map(this.#parts.map((parts) => [parts.name, parts]));
    const built: UpstreamParts[] = [];
    const changes: UpstreamChanges = { added: [], removed: [], changed: [], changedTokensKept: [], unchanged: [] };
    const freshCredentials: Credential[] = [];
    try {
      for (const upstream of upstreams) {
        const old = current.get(upstream.name);
        const key = settingsKey({ upstream, inboundKeyHeader });
        if (old && old.key === key) {
          built.push(old);
          changes.unchanged.push(upstream.name);
          continue;
        }
        const authKey = settingsKey(upstream.auth);
        let credential = old && old.credential.key === authKey ? old.credential : undefined;
        if (!credential) {
          credential = this.#createCredential(upstream, authKey);
          freshCredentials.push(credential);
        }
        const pools = createUpstreamPools(upstream, this.#deps.logger);
        const route = createRoute(upstream, credential.manager, this.#deps.metrics, { inboundKeyHeader, pools });
        built.push({ name: upstream.name, credential, route, key });
        if (!old) changes.added.push(upstream.name);
        else if (credential === old.credential) changes.changedTokensKept.push(upstream.name);
        else changes.changed.push(upstream.name);
      }
    } catch (error) {
      void discardBuilt(built, current, freshCredentials);
      throw error;
    }
    const names = new Set(upstreams.map((upstream) => upstream.name));
    for (const name of current.keys()) if (!names.has(name)) changes.removed.push(name);

    return {
      next: built,
      changes,
      apply: async (switchTo) => {
        await Promise.all(freshCredentials.map((credential) => credential.manager.start()));
        const previous = this.#parts;
        this.#parts = built;
        this.#firstSetDone = true;
        switchTo();
        this.#retire(previous, built);
      },
      discard: () => discardBuilt(built, current, freshCredentials),
    };
  }

  /** Shutting down: no more refreshes or token work; requests in flight still use the tokens held. */
  stopTokenWork(): void {
    for (const credential of uniqueCredentials(this.#parts)) credential.manager.stop();
  }

  /** Closes every part, current and retiring, once its requests are done (the listener is closed by then). */
  async close(): Promise<void> {
    const parts = this.#parts;
    this.#parts = [];
    await Promise.all([...this.#retiring]);
    await Promise.all(parts.map((part) => part.route.close()));
    await Promise.all(uniqueCredentials(parts).map((credential) => credential.client.close()));
    // Notes on the stored records (a token found good after all) land before the store closes.
    await Promise.all(uniqueCredentials(parts).map((credential) => credential.manager.settled()));
  }

  #createCredential(upstream: UpstreamConfig, key: string): Credential {
    const { store, logger, metrics } = this.#deps;
    // A manager replaced by a reload lives on until its requests finish, beside its successor. Locks and
    // in-flight marks are held by owner id, so the two must not share one: they coordinate as replicas do.
    const owner = this.#firstSetDone ? `${this.#deps.owner}.${++this.#managersMade}` : this.#deps.owner;
    const client = createOAuth2Client(upstream.auth, { upstream: upstream.name, logger });
    const manager = new TokenManager({ upstream, store, client, logger, metrics: metrics.tokens, owner });
    return { client, manager, key };
  }

  /** Routes and credentials of `previous` that `next` does not use: closed once their requests are done. */
  #retire(previous: readonly UpstreamParts[], next: readonly UpstreamParts[]): void {
    const kept = new Set<object>(next.flatMap((parts) => [parts.route, parts.credential]));
    const routes = previous.map((parts) => parts.route).filter((route) => !kept.has(route));
    const credentials = uniqueCredentials(previous).filter((credential) => !kept.has(credential));
    if (routes.length === 0 && credentials.length === 0) return;
    const retiring = (async () => {
      await Promise.all(routes.map((route) => route.whenIdle()));
      await Promise.all(routes.map((route) => route.close()));
      for (const credential of credentials) credential.manager.stop();
      await Promise.all(credentials.map((credential) => credential.manager.settled()));
      await Promise.all(credentials.map((credential) => credential.client.close()));
    })().catch((error: unknown) =>
      this.#deps.logger.warn({ event: 'upstream_retire_failed', err: String(error) }, 'closing a retired upstream failed'),
    );
    this.#retiring.add(retiring);
    void retiring.finally(() => this.#retiring.delete(retiring));
  }
}

/** Closes what a refused reload built: new pools, and new clients and managers (never the current ones). */
async function discardBuilt(
  built: readonly UpstreamParts[],
  current: ReadonlyMap<string, UpstreamParts>,
  freshCredentials: readonly Credential[],
): Promise<void> {
  const inUse = new Set<Route>([...current.values()].map((parts) => parts.route));
  await Promise.all(built.filter((parts) => !inUse.has(parts.route)).map((parts) => parts.route.close()));
  for (const credential of freshCredentials) credential.manager.stop();
  await Promise.all(freshCredentials.map((credential) => credential.client.close()));
}

function uniqueCredentials(parts: readonly UpstreamParts[]): Credential[] {
  return [...new Set(parts.map((part) => part.credential))];
}
