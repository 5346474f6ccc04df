/**
 * The replay policy of the request path: send once; if the upstream rejects the token and the credential
 * wants a replay, hold the rejection back, get a newer token and send the same request once more. The
 * second answer goes to the client whatever it is. The credential decides (src/tokens/replay-policy.ts);
 * this module only runs the steps and reports how they went.
 */
import type { Credential, CurrentToken } from '../tokens/credential.js';
import type { ForwardResult } from './forward.js';

/** Sends the request with `bearer`; `holdStatus` says which statuses to hold back instead of streaming. */
export type Send = (bearer: CurrentToken, holdStatus: (status: number) => boolean) => Promise<ForwardResult>;

export interface ReplayPlan {
  readonly credential: Credential;
  /** Upstream statuses that mean "token rejected". */
  readonly replayOn: ReadonlySet<number>;
  readonly token: CurrentToken;
  /** The request body can be sent twice (buffered or empty). */
  readonly replayable: boolean;
  readonly send: Send;
  /** Called once, just before the second send. */
  onReplay(): void;
}

const NEVER_HOLD = (): boolean => false;

/** The result to answer the client with: the first answer, the held rejection, or the replay's answer. */
export async function sendWithReplay(plan: ReplayPlan): Promise<ForwardResult> {
  const { credential, replayOn, token } = plan;
  const first = await plan.send(token, (status) => replayOn.has(status) && credential.onRejection(token.generation, plan.replayable));
  if (first.kind !== 'held') return first;
  const fresh = await credential.replacementFor(token.generation);
  if (!fresh) {
    credential.replayEnded('no_new_token');
    return first;
  }
  plan.onReplay();
  const second = await plan.send(fresh, NEVER_HOLD);
  credential.replayEnded({ generation: fresh.generation, accepted: second.kind === 'sent' && !replayOn.has(second.status) });
  return second;
}
