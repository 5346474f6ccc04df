/**
 * Storing a new token pair that this replica just obtained. Its refresh token is the only unspent one, so
 * the pair must land: over a dead verdict or an older record (a replica that reused our spent token after
 * our mark expired, a store that lost data) it is written anyway, as the next generation. Only a newer
 * live record from another writer (a person's `seed`, a refresh allowed without the lock) wins over it.
 */
import type { TokenRecord, TokenStore } from '../store/token-store.js';
import type { Logger } from '../log.js';

export type CommitOutcome =
  /** Stored; `record` is what is stored (its generation may be higher than asked when it went over a dead verdict). */
  | { readonly kind: 'landed'; readonly record: TokenRecord }
  /** A newer live record is stored: use it, not ours. */
  | { readonly kind: 'superseded'; readonly stored: TokenRecord | undefined };

/** Store errors propagate: the caller keeps the pair in memory and tries again. */
export async function commitRecord(
  deps: { name: string; store: TokenStore; log: Logger },
  expectedGeneration: number,
  next: TokenRecord,
): Promise<CommitOutcome> {
  if ((await deps.store.compareAndSet(deps.name, expectedGeneration, next)) === 'applied') return { kind: 'landed', record: next };
  const stored = await deps.store.read(deps.name);
  // Our own earlier write landed although its reply was lost.
  if (stored && stored.generation === next.generation && stored.writer === next.writer && stored.accessToken === next.accessToken)
    return { kind: 'landed', record: stored };
  if (stored && !stored.dead && stored.generation >= next.generation) return { kind: 'superseded', stored };
  const replacement: TokenRecord = stored?.dead ? { ...next, generation: stored.generation + 1 } : next;
  if ((await deps.store.compareAndSet(deps.name, stored?.generation ?? 0, replacement)) !== 'applied')
    return { kind: 'superseded', stored: await deps.store.read(deps.name) };
  deps.log.warn(
    {
      event: 'record_written_over',
      generation: replacement.generation,
      replacedGeneration: stored?.generation ?? 0,
      replacedDead: Boolean(stored?.dead),
    },
    stored?.dead
      ? 'the store held a dead verdict for a refresh token this replica had already spent successfully; stored the live pair over it'
      : 'the store held an older record than the pair this replica just obtained; stored the pair over it',
  );
  return { kind: 'landed', record: replacement };
}
