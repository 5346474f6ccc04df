/**
 * Ports for tests, without the probe-then-release race (bind port 0, read the port, close, hand the number
 * on: meanwhile any other listen(0) on the box may be given that port).
 *
 * - A server of ours listens on port 0 and reports the port it got; nothing here is needed for that.
 * - A child that must be told its port up front (redis-server) gets a candidate below the kernel's
 *   ephemeral range, where listen(0) never hands out ports, and its start is retried on EADDRINUSE.
 * - A port where nothing listens ("connection refused") is held by a connected socket for as long as the
 *   test runs: an incoming SYN finds no listener and is refused, and the kernel neither gives the port to
 *   a listen(0) nor lets anyone bind it while that socket holds it.
 */
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

const HOST = '127.0.0.1';
/** Below this the candidates start: clear of the well-known ports and of what services on a dev box use. */
const LOWEST_CANDIDATE = 10_000;

/** The kernel's ephemeral range (what listen(0) and outgoing connections use). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return { low, high };
  } catch {
    // not Linux: use Linux's default range
  }
  return { low: 32_768, high: 60_999 };
}

/**
 * A port number for a child that binds it itself: random, below the ephemeral range when there is room
 * (then only another explicit bind can collide), not probed. The caller retries on EADDRINUSE
 * (see retryOnAddressInUse). `span` keeps `port + span` below the range too (redis's cluster bus port).
 */
export function portCandidate(span = 0): number {
  const { low } = ephemeralRange();
  const top = low - 1 - span;
  const [from, to] = top - LOWEST_CANDIDATE > 1_000 ? [LOWEST_CANDIDATE, top] : [1_024, 65_535 - span];
  return from + Math.floor(Math.random() * (to - from + 1));
}

/** What a start attempt says when its port was taken; anything else is its result. */
export const ADDRESS_IN_USE = Symbol('address in use');

/** Calls `start` with fresh candidates until it does not report ADDRESS_IN_USE (at most `attempts` times). */
export async function retryOnAddressInUse<T>(
  what: string,
  start: (port: number) => Promise<T | typeof ADDRESS_IN_USE>,
  attempts = 10,
  span = 0,
): Promise<T> {
  const tried: number[] = [];
  for (let i = 0; i < attempts; i++) {
    const port = portCandidate(span);
    tried.push(port);
    const result = await start(port);
    if (result !== ADDRESS_IN_USE) return result;
  }
  throw new Error(`${what}: every port tried was in use (${tried.join(', ')})`);
}

export interface RefusingPort {
  readonly port: number;
  /**
   * Frees the port for a listener of the test's own (which should bind it right away). The peer closes
   * first so that the TIME_WAIT stays on its side and the port is bindable at once.
   */
  release(): Promise<void>;
}

/** A loopback port on which connections are refused, held until release() or the end of the running test. */
export async function refusingPort(): Promise<RefusingPort> {
  const peers: Socket[] = [];
  const anchor = createServer((socket) => {
    socket.on('error', () => undefined);
    peers.push(socket);
  });
  anchor.listen(0, HOST);
  await once(anchor, 'listening');
  const address = anchor.address();
  if (typeof address !== 'object' || address === null) throw new Error('the anchor server has no port');
  const holder = connect(address.port, HOST);
  holder.on('error', () => undefined);
  await once(holder, 'connect');
  // The accepted side may not be reported yet; it is needed for an orderly release.
  while (peers.length === 0) await new Promise((resolve) => setImmediate(resolve));
  const port = holder.localPort;
  if (port === undefined) throw new Error('the holding socket has no local port');

  let released: Promise<void> | undefined;
  const release = (): Promise<void> => {
    released ??= (async () => {
      const closed = once(holder, 'close');
      for (const peer of peers) peer.end();
      await closed;
      await new Promise<void>((resolve) => anchor.close(() => resolve()));
    })();
    return released;
  };
  onTestFinished(release);
  return { port, release };
}
