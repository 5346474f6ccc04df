/**
 * A TCP relay between ONE client (a proxy replica) and one server (Redis) whose behaviour a test switches
 * while it runs, to play network faults between a replica and its store at the byte level:
 *   - pass: bytes flow both ways (the start state);
 *   - stall: bytes are held both ways, closes too, and delivered in order on pass(), like a link that
 *     stopped moving packets for a while (nothing is lost, everything arrives late);
 *   - drop replies: what the server sends is thrown away (the command ran, its reply was lost);
 *   - refuse: new connections are reset the moment they arrive (existing ones are not touched);
 *   - reset(): every current connection is torn down with RST on both sides.
 * Bounded: at most MAX_CONNECTIONS at once and `maxHeldBytes` held per direction per connection (beyond
 * that the connection is reset, as a real buffer would overflow); everything is torn down by the cleanup
 * registered with the caller's test.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { RegisterCleanup } from './redis-server.js';

export type RelayMode = 'pass' | 'stall' | 'drop-replies';

export interface FaultRelay {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, for a replica's store url. */
  readonly url: string;
  mode(): RelayMode;
  /** Back to normal: held bytes (and held closes) are delivered in order first; new connections are accepted again. */
  pass(): void;
  /** From now on bytes in both directions are held here, on existing and new connections alike. */
  stall(): void;
  /** From now on the server's bytes are discarded; the client's still reach the server. */
  dropReplies(): void;
  /** New connections are reset as they arrive until pass(); combine with reset() for a host that went away. */
  refuse(): void;
  /** Destroys every current connection with RST on both sides; resolves to how many there were. */
  reset(): number;
  /** Connections open now. */
  connections(): number;
  /** Bytes held now, summed over connections. */
  heldBytes(): { toServer: number; toClient: number };
  /** Connections reset because they arrived while refusing (or over the connection bound). */
  refused(): number;
}

export interface FaultRelayOptions {
  /** Per direction per connection; a stall that would hold more resets the connection. Default 8 MiB. */
  maxHeldBytes?: number;
}

const MAX_CONNECTIONS = 64;
const DEFAULT_MAX_HELD_BYTES = 8 * 1024 * 1024;

function endSocket(socket: Socket): void {
  if (!socket.destroyed && !socket.writableEnded) socket.end();
}

/** One direction of one connection. */
interface Pipe {
  readonly to: Socket;
  held: Buffer[];
  heldBytes: number;
  /** The sender closed while stalled: end `to` once the held bytes are delivered. */
  endHeld: boolean;
}

interface Link {
  readonly client: Socket;
  readonly server: Socket;
  readonly toServer: Pipe;
  readonly toClient: Pipe;
}

export async function startFaultRelay(
  target: { host: string; port: number },
  register: RegisterCleanup,
  options: FaultRelayOptions = {},
): Promise<FaultRelay> {
  const maxHeldBytes = options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
  let mode: RelayMode = 'pass';
  let refusing = false;
  let refusedCount = 0;
  const links = new Set<Link>();

  const resetSocket = (socket: Socket): void => {
    try {
      socket.resetAndDestroy();
    } catch {
      socket.destroy();
    }
  };
  const teardown = (link: Link): void => {
    links.delete(link);
    resetSocket(link.client);
    resetSocket(link.server);
  };
  const deliver = (pipe: Pipe): void => {
    for (const chunk of pipe.held) if (!pipe.to.destroyed) pipe.to.write(chunk);
    pipe.held = [];
    pipe.heldBytes = 0;
    if (pipe.endHeld) endSocket(pipe.to);
    pipe.endHeld = false;
  };
  const onData = (link: Link, pipe: Pipe, chunk: Buffer): void => {
    if (mode === 'stall') {
      pipe.held.push(chunk);
      pipe.heldBytes += chunk.length;
      if (pipe.heldBytes > maxHeldBytes) teardown(link);
      return;
    }
    if (mode === 'drop-replies' && pipe === link.toClient) return;
    if (!pipe.to.destroyed) pipe.to.write(chunk);
  };
  /** The sender of `pipe` finished (FIN or close): pass that on, after anything still held. */
  const onSenderDone = (link: Link, pipe: Pipe): void => {
    if (!links.has(link)) return;
    if (mode === 'stall' || pipe.held.length > 0) {
      pipe.endHeld = true;
      return;
    }
    endSocket(pipe.to);
  };
  /** A side that closed is passed on as a FIN (above), so the other side closes by itself once it has drained. */
  const forget = (link: Link): void => {
    if (link.client.destroyed && link.server.destroyed) links.delete(link);
  };

  const listener = createServer({ allowHalfOpen: true }, (client) => {
    if (refusing || links.size >= MAX_CONNECTIONS) {
      refusedCount++;
      client.on('error', () => undefined);
      resetSocket(client);
      return;
    }
    const server = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const link: Link = {
      client,
      server,
      toServer: { to: server, held: [], heldBytes: 0, endHeld: false },
      toClient: { to: client, held: [], heldBytes: 0, endHeld: false },
    };
    links.add(link);
    client.on('data', (chunk: Buffer) => onData(link, link.toServer, chunk));
    server.on('data', (chunk: Buffer) => onData(link, link.toClient, chunk));
    client.on('end', () => onSenderDone(link, link.toServer));
    server.on('end', () => onSenderDone(link, link.toClient));
    // An error (ECONNRESET, or the server refusing) ends the whole link at once, as an RST would.
    client.on('error', () => teardown(link));
    server.on('error', () => teardown(link));
    client.on('close', () => {
      onSenderDone(link, link.toServer);
      forget(link);
    });
    server.on('close', () => {
      onSenderDone(link, link.toClient);
      forget(link);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  register(
    () =>
      new Promise<void>((resolve) => {
        for (const link of [...links]) teardown(link);
        listener.close(() => resolve());
      }),
  );
  const address = listener.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    mode: () => mode,
    pass() {
      mode = 'pass';
      refusing = false;
      for (const link of [...links]) {
        deliver(link.toServer);
        deliver(link.toClient);
      }
    },
    stall() {
      mode = 'stall';
    },
    dropReplies() {
      mode = 'drop-replies';
    },
    refuse() {
      refusing = true;
    },
    reset() {
      const count = links.size;
      for (const link of [...links]) teardown(link);
      return count;
    },
    connections: () => links.size,
    heldBytes() {
      let toServer = 0;
      let toClient = 0;
      for (const link of links) {
        toServer += link.toServer.heldBytes;
        toClient += link.toClient.heldBytes;
      }
      return { toServer, toClient };
    },
    refused: () => refusedCount,
  };
}
