/**
 * Shared by the token-core fault tests (token-core-faults, token-endpoint-outage): one request through a
 * proxy reduced to what the tests judge (status, the proxy's error code, Retry-After), never hanging.
 */

export interface Answer {
  /** 0 when no response came within the bound (the error says why). */
  readonly status: number;
  /** `error.code` of a proxy error body; undefined for the upstream's own answers. */
  readonly code: string | undefined;
  readonly retryAfter: string | null;
  readonly error?: string;
}

/** GET `url`, answered within `timeoutMs` or recorded as no answer (status 0). */
export async function ask(url: string, timeoutMs: number): Promise<Answer> {
  try {
    const response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    return { status: response.status, code: proxyErrorCode(text), retryAfter: response.headers.get('retry-after') };
  } catch (error) {
    return { status: 0, code: undefined, retryAfter: null, error: error instanceof Error ? error.message : String(error) };
  }
}

function proxyErrorCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** A 503 from the proxy with one of `codes` and a Retry-After in whole seconds (RFC 9110 §10.2.3), at least 1. */
export function isClear503(answer: Answer, codes: readonly string[]): boolean {
  return answer.status === 503 && answer.code !== undefined && codes.includes(answer.code) && /^[1-9]\d*$/.test(answer.retryAfter ?? '');
}

/** For failure messages: "503 REFRESH_PENDING retry-after=2", "401", "0 (aborted)". */
export function summarize(answer: Answer): string {
  if (answer.status === 0) return `0 (${answer.error ?? 'no answer'})`;
  return [String(answer.status), answer.code, answer.retryAfter === null ? undefined : `retry-after=${answer.retryAfter}`]
    .filter(Boolean)
    .join(' ');
}

/** For logs: "401 x5, 503 REFRESH_PENDING retry-after=2 x3", in order of first appearance. */
export function tally(answers: readonly Answer[]): string {
  const counts = new Map<string, number>();
  for (const answer of answers) counts.set(summarize(answer), (counts.get(summarize(answer)) ?? 0) + 1);
  return [...counts].map(([what, count]) => `${what} x${count}`).join(', ');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
