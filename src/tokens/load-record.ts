/** A token manager's first read: the stored record, after storing the configured seed where it applies. */
import type { TokenRecord } from '../store/token-store.js';
import { fingerprint } from './fingerprint.js';
import type { RefreshDeps } from './refresh-procedure.js';
import { isNewSeedForDeadRecord, seedRecord } from './token-record.js';

/**
 * The seed from proxy.yaml is written only when the store holds no record for the credential, or a dead
 * one that this seed did not come from (a person put a new refresh token in the config). Otherwise the
 * stored record wins: after the first refresh the seed is spent, and resending it would kill the credential.
 */
export async function loadOrSeed(
  deps: Pick<RefreshDeps, 'name' | 'store' | 'owner' | 'log'> & { readonly clock?: RefreshDeps['clock'] },
  seed: string | undefined,
): Promise<TokenRecord | undefined> {
  const record = await deps.store.read(deps.name);
  if (!seed || (record && !isNewSeedForDeadRecord(record, seed))) return record;
  const next = seedRecord(record, seed, deps.owner, deps.clock?.now());
  if ((await deps.store.compareAndSet(deps.name, record?.generation ?? 0, next)) === 'applied') {
    deps.log.info(
      { event: 'seeded', generation: next.generation, refreshTokenFingerprint: fingerprint(seed) },
      'stored the configured refresh token',
    );
  }
  return deps.store.read(deps.name);
}
