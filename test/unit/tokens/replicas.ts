/**
 * Token managers of several replicas sharing one real memory store, each through its own link that a
 * test can stall, with one scripted token endpoint and one fake clock for all. Unit-test scaffolding for
 * the token core: no sockets, no sleeps, every millisecond under the test's control.
 */
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { createMetrics } from '../../../src/admin/metrics.js';
import { parseConfig } from '../../../src/config/load.js';
import type { UpstreamConfig } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import type { TokenStore } from '../../../src/store/token-store.js';
import { TokenManager } from '../../../src/tokens/token-manager.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { ScriptedTokenClient } from '../../helpers/scripted-token-client.js';
import { linkTo, type StoreLink } from '../../helpers/store-link.js';

export const UPSTREAM = 'api';
export const SEED = 'rt-seed';

export interface Replica {
  readonly name: string;
  readonly manager: TokenManager;
  readonly link: StoreLink;
  readonly logs: Record<string, unknown>[];
  events(event: string): Record<string, unknown>[];
}

export interface Cluster {
  readonly clock: FakeClock;
  readonly store: TokenStore;
  readonly endpoint: ScriptedTokenClient;
  readonly upstream: UpstreamConfig;
  /** A replica with the cluster's config, or another one (e.g. a corrected secret after a restart). */
  replica(name: string, upstream?: UpstreamConfig): Promise<Replica>;
}

/** The credential lines of the default cluster: Apiax with a seed. */
export const APIAX_SEED_AUTH = ['preset: apiax', `refreshToken: ${SEED}`];

/** An oauth2 upstream that gets its tokens with the client credentials (auth.grant client_credentials). */
export const CLIENT_CREDENTIALS_AUTH = ['preset: oauth2', 'grant: client_credentials', 'clientId: cid', 'clientSecret: cs-1'];

/**
 * `auth` lines are YAML under upstreams.api.auth, e.g. "lockLeaseMs: 3000"; `credentialYaml` replaces the
 * preset and its credentials (tokenUrl is always set).
 */
export function cluster(authYaml: string[] = [], upstreamYaml: string[] = [], credentialYaml: string[] = APIAX_SEED_AUTH): Cluster {
  const clock = new FakeClock();
  const store = createMemoryStore({ now: () => clock.now() });
  const endpoint = new ScriptedTokenClient(clock);
  const upstream = upstreamConfig(authYaml, upstreamYaml, credentialYaml);
  const replicas: TokenManager[] = [];
  onTestFinished(() => replicas.forEach((manager) => manager.stop()));

  return {
    clock,
    store,
    endpoint,
    upstream,
    async replica(name, config = upstream) {
      const logs: Record<string, unknown>[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      });
      const link = linkTo(store, clock, name);
      const manager = new TokenManager({
        upstream: config,
        store: link,
        client: endpoint,
        logger: createLogger({ level: 'debug', destination }),
        metrics: createMetrics().tokens,
        owner: name,
        clock,
        random: () => 0.5,
      });
      replicas.push(manager);
      await manager.start();
      return { name, manager, link, logs, events: (event) => logs.filter((line) => line.event === event) };
    },
  };
}

/** The one upstream of a cluster's config (see cluster for the arguments). */
export function upstreamConfig(
  authYaml: string[] = [],
  upstreamYaml: string[] = [],
  credentialYaml: string[] = APIAX_SEED_AUTH,
): UpstreamConfig {
  const config = parseConfig(
    [
      'store: { type: memory }',
      'upstreams:',
      `  ${UPSTREAM}:`,
      '    target: http://127.0.0.1:1',
      ...upstreamYaml.map((line) => `    ${line}`),
      '    auth:',
      '      tokenUrl: http://127.0.0.1:1/token',
      ...credentialYaml.map((line) => `      ${line}`),
      ...authYaml.map((line) => `      ${line}`),
    ].join('\n'),
  );
  return config.upstreams[0] as UpstreamConfig;
}
