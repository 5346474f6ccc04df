/**
 * An HTTP forwarder in front of a token endpoint that can hold requests instead of passing them on: a
 * request held here is "in flight" for the client, but the provider never sees it, so the refresh token
 * it carries stays unspent (unlike a slow provider, which spends it even if the client has gone).
 * Held requests are never forwarded later, not even after pass() (their clients have usually died).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RegisterCleanup } from './redis-server.js';

export interface HoldingGate {
  /** The gate's origin, e.g. http://127.0.0.1:41234; paths are passed through unchanged. */
  readonly origin: string;
  /** Requests arriving from now on are held (never answered, never forwarded). */
  hold(): void;
  /** Requests arriving from now on are forwarded. */
  pass(): void;
  /** How many requests have been held so far. */
  held(): number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

export async function startHoldingGate(targetOrigin: string, register: RegisterCleanup): Promise<HoldingGate> {
  let holding = false;
  let heldCount = 0;
  const parked = new Set<ServerResponse>();

  const forward = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && typeof value === 'string') headers[name] = value;
    const upstream = await fetch(`${targetOrigin}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    const text = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' });
    res.end(text);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (holding) {
        heldCount++;
        parked.add(res);
        res.on('close', () => parked.delete(res));
        return;
      }
      forward(req, res, Buffer.concat(chunks)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  register(
    () =>
      new Promise<void>((resolve) => {
        for (const res of parked) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hold: () => {
      holding = true;
    },
    pass: () => {
      holding = false;
    },
    held: () => heldCount,
  };
}
