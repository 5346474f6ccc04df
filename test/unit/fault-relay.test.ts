/**
 * The fault relay (test/helpers/fault-relay.ts) against a small server the test drives: each mode does to
 * the bytes what it says, and a stalled link delivers everything, closes included, in order on pass().
 */
import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import { waitUntil } from '../helpers/proxy-process.js';

/** A server that records what each connection sent and lets the test answer on it. */
interface DrivenServer {
  readonly port: number;
  /** Connections in arrival order, with what each has received and whether it saw the client's FIN. */
  readonly connections: { socket: Socket; received: string; ended: boolean; error: string | undefined }[];
}

async function startDrivenServer(): Promise<DrivenServer> {
  const connections: DrivenServer['connections'] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const entry = { socket, received: '', ended: false, error: undefined as string | undefined };
    connections.push(entry);
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (entry.received += text));
    socket.on('end', () => {
      entry.ended = true;
      socket.end();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (entry.error = error.code ?? error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        for (const { socket } of connections) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, connections };
}

interface Client {
  readonly socket: Socket;
  received(): string;
  error(): string | undefined;
  closed(): boolean;
}

async function connectClient(relay: FaultRelay): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port: relay.port });
  onTestFinished(() => void socket.destroy());
  let received = '';
  let error: string | undefined;
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => (received += text));
  socket.on('error', (failure: NodeJS.ErrnoException) => (error = failure.code ?? failure.message));
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, error: () => error, closed: () => closed };
}

async function setup(
  maxHeldBytes?: number,
): Promise<{ server: DrivenServer; relay: FaultRelay; client: Client; upstream: DrivenServer['connections'][number] }> {
  const server = await startDrivenServer();
  const relay = await startFaultRelay(
    { host: '127.0.0.1', port: server.port },
    onTestFinished,
    maxHeldBytes === undefined ? {} : { maxHeldBytes },
  );
  const client = await connectClient(relay);
  await waitUntil('the relay to connect to the server', () => server.connections.length === 1, 2_000);
  return { server, relay, client, upstream: server.connections[0]! };
}

/** Lets the event loop run long enough for loopback bytes to arrive, if they were going to. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

describe('fault relay', () => {
  it('passes bytes both ways', async () => {
    const { client, upstream } = await setup();
    client.socket.write('PING');
    await waitUntil('the server to get PING', () => upstream.received === 'PING', 2_000);
    upstream.socket.write('PONG');
    await waitUntil('the client to get PONG', () => client.received() === 'PONG', 2_000);
  });

  it('stall holds bytes and the client close both ways, and delivers them in order on pass()', async () => {
    const { relay, client, upstream } = await setup();
    relay.stall();
    client.socket.write('SET a 1;');
    upstream.socket.write('late reply;');
    client.socket.write('SET b 2;');
    client.socket.end();
    await settle();
    expect(upstream.received).toBe('');
    expect(upstream.ended).toBe(false);
    expect(client.received()).toBe('');
    expect(relay.heldBytes()).toEqual({ toServer: 16, toClient: 11 });

    relay.pass();
    await waitUntil('the held commands and the FIN to arrive', () => upstream.ended, 2_000);
    expect(upstream.received).toBe('SET a 1;SET b 2;');
    await waitUntil('the held reply to arrive', () => client.received() === 'late reply;', 2_000);
    expect(relay.heldBytes()).toEqual({ toServer: 0, toClient: 0 });
    await waitUntil('the link to close', () => relay.connections() === 0, 2_000);
  });

  it('drop-replies lets commands through and loses the answers; pass() restores the answers', async () => {
    const { relay, client, upstream } = await setup();
    relay.dropReplies();
    client.socket.write('INCR x;');
    await waitUntil('the command to reach the server', () => upstream.received === 'INCR x;', 2_000);
    upstream.socket.write('lost;');
    await settle();
    expect(client.received()).toBe('');
    relay.pass();
    upstream.socket.write('kept;');
    await waitUntil('the next reply to arrive', () => client.received() === 'kept;', 2_000);
  });

  it('reset() tears every connection down with RST on both sides', async () => {
    const { relay, client, upstream } = await setup();
    expect(relay.reset()).toBe(1);
    await waitUntil('the client to see the reset', () => client.error() === 'ECONNRESET', 2_000);
    await waitUntil('the server to see the reset', () => upstream.error === 'ECONNRESET', 2_000);
    expect(relay.connections()).toBe(0);
  });

  it('refuse() resets new connections and leaves existing ones alone; pass() accepts again', async () => {
    const { server, relay, client, upstream } = await setup();
    relay.refuse();
    const refused = connect({ host: '127.0.0.1', port: relay.port });
    onTestFinished(() => void refused.destroy());
    const refusedWith = await new Promise<string>((resolve) => {
      refused.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      refused.on('close', () => resolve('closed'));
    });
    expect(refusedWith).toBe('ECONNRESET');
    expect(relay.refused()).toBe(1);
    expect(server.connections).toHaveLength(1);

    client.socket.write('still here');
    await waitUntil('the existing connection to work', () => upstream.received === 'still here', 2_000);

    relay.pass();
    await connectClient(relay);
    await waitUntil('a new connection to reach the server', () => server.connections.length === 2, 2_000);
  });

  it('a stall that would hold more than maxHeldBytes resets the connection', async () => {
    const { relay, client, upstream } = await setup(1024);
    relay.stall();
    client.socket.write(Buffer.alloc(2048, 'x'));
    await waitUntil('the client to see the reset', () => client.error() === 'ECONNRESET' || client.closed(), 2_000);
    expect(upstream.received).toBe('');
    expect(relay.connections()).toBe(0);
  });
});
