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
  replica(name: string): Promise<Replica>;
}

/** `auth` lines are YAML under upstreams.api.auth, e.g. "lockLeaseMs: 3000". */
export function cluster(authYaml: string[] = [], upstreamYaml: string[] = []): Cluster {
  const clock = new FakeClock();
  const store = createMemoryStore({ now: () => clock.now() });
  const endpoint = new ScriptedTokenClient(clock);
  const config = parseConfig(
    [
      'store: { type: memory }',
      'upstreams:',
      `  ${UPSTREAM}:`,
      '    target: http://127.0.0.1:1',
      ...upstreamYaml.map((line) => `    ${line}`),
      '    auth:',
      '      preset: apiax',
      '      tokenUrl: http://127.0.0.1:1/token',
      `      refreshToken: ${SEED}`,
      ...authYaml.map((line) => `      ${line}`),
    ].join('\n'),
  );
  const upstream = config.upstreams[0] as UpstreamConfig;
  const replicas: TokenManager[] = [];
  onTestFinished(() => replicas.forEach((manager) => manager.stop()));

  return {
    clock,
    store,
    endpoint,
    upstream,
    async replica(name) {
      const logs: Record<string, unknown>[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      });
      const link = linkTo(store, clock, name);
      const manager = new TokenManager({
        upstream,
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
