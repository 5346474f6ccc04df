/**
 * The test helpers' ports (test/helpers/ports.ts): a refused port that nobody can take while a test relies
 * on it being refused, and candidates for children that bind their own port, retried when taken.
 */
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ADDRESS_IN_USE, refusingPort, retryOnAddressInUse } from '../helpers/ports.js';

async function listenOn(port: number): Promise<string> {
  const server = createServer();
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.listen(port, '127.0.0.1');
  return once(server, 'listening').then(
    () => 'listening',
    (error: NodeJS.ErrnoException) => String(error.code),
  );
}

async function connectTo(port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  return once(socket, 'connect').then(
    () => 'connected',
    (error: NodeJS.ErrnoException) => String(error.code),
  );
}

describe('refusingPort', () => {
  it('refuses connections, and cannot be bound by anyone until released; then it can', async () => {
    const refusing = await refusingPort();
    expect(await connectTo(refusing.port)).toBe('ECONNREFUSED');
    // A port that was only probed and released would be free here: that is the race this rules out.
    expect(await listenOn(refusing.port)).toBe('EADDRINUSE');
    await refusing.release();
    expect(await listenOn(refusing.port)).toBe('listening');
  });
});

describe('retryOnAddressInUse', () => {
  it('tries new candidates while the start reports the port taken, below the ephemeral range', async () => {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const tried: number[] = [];
    const port = await retryOnAddressInUse(
      'a test server',
      async (candidate) => {
        tried.push(candidate);
        return tried.length < 3 ? ADDRESS_IN_USE : candidate;
      },
      10,
      10_000,
    );
    expect(tried).toHaveLength(3);
    expect(port).toBe(tried[2]);
    for (const candidate of tried) expect(candidate + 10_000).toBeLessThan(ephemeralLow ?? 32_768);
  });

  it('gives up after the attempts, naming the ports it tried', async () => {
    await expect(retryOnAddressInUse('a test server', async () => ADDRESS_IN_USE, 3)).rejects.toThrow(
      /^a test server: every port tried was in use \(\d+, \d+, \d+\)$/,
    );
  });
});
