/**
 * A TCP forwarder between one client and a server (a replica and Redis), that can hold what the client
 * sends: held bytes reach the server only on release(), as if the network had delayed them. The replies
 * to released commands flow back as usual. Used to put a replica's write on the wire and deliver it late.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { RegisterCleanup } from './redis-server.js';

export interface TcpForwarder {
  readonly port: number;
  /** From now on, bytes from clients are kept here; `onHeld` sees everything held so far on that connection. */
  hold(onHeld?: (heldSoFar: Buffer) => void): void;
  /**
   * Sends everything held, in order, and forwards at once again. Resolves when the server has answered on
   * every connection that had something held (Redis runs a connection's commands in order).
   */
  release(): Promise<void>;
}

export async function startTcpForwarder(target: { host: string; port: number }, register: RegisterCleanup): Promise<TcpForwarder> {
  let holding = false;
  let onHeld: ((heldSoFar: Buffer) => void) | undefined;
  const connections = new Set<{ client: Socket; server: Socket; held: Buffer[]; answered?: () => void }>();

  const listener = createServer((client) => {
    const server = connect(target.port, target.host);
    const connection: { client: Socket; server: Socket; held: Buffer[]; answered?: () => void } = { client, server, held: [] };
    connections.add(connection);
    client.on('data', (chunk: Buffer) => {
      if (!holding) return void server.write(chunk);
      connection.held.push(chunk);
      onHeld?.(Buffer.concat(connection.held));
    });
    server.on('data', (chunk: Buffer) => {
      client.write(chunk);
      connection.answered?.();
    });
    const close = () => {
      connections.delete(connection);
      client.destroy();
      server.destroy();
    };
    client.on('close', close).on('error', close);
    server.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  register(
    () =>
      new Promise<void>((resolve) => {
        for (const { client, server } of connections) {
          client.destroy();
          server.destroy();
        }
        listener.close(() => resolve());
      }),
  );
  const address = listener.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    hold(callback) {
      holding = true;
      onHeld = callback;
    },
    release() {
      holding = false;
      onHeld = undefined;
      const answers: Promise<void>[] = [];
      for (const connection of connections) {
        if (connection.held.length === 0) continue;
        answers.push(
          new Promise<void>((resolve) => {
            connection.answered = () => {
              connection.answered = undefined;
              resolve();
            };
          }),
        );
        for (const chunk of connection.held) connection.server.write(chunk);
        connection.held = [];
      }
      return Promise.all(answers).then(() => undefined);
    },
  };
}
