/**
 * WebSocket upgrades through the proxy, with a real `ws` client and a real `ws` server on 127.0.0.1: data
 * both ways untouched (text, binary, fragments, ping/pong, 1 MiB, the client's masking), the client's
 * credentials replaced by the upstream's bearer token, a rejected handshake refreshed and replayed once,
 * non-101 answers passed on, the proxy's own closes (idle, lifetime, shutdown) as close frames 1001 to
 * both sides at a frame boundary, the cap, and refusals as the same JSON errors requests get.
 *
 * The proxy here is the upgrade handler behind a plain http.Server (startWebSocketProxy, below), with the
 * real token core: a TokenManager on a memory store, refreshing at the fake provider's token endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { createMetrics } from '../../src/admin/metrics.js';
import { parseConfig } from '../../src/config/load.js';
import { createInboundAuth } from '../../src/proxy/inbound-auth.js';
import { createTargetResolver } from '../../src/proxy/request-target.js';
import { createRoute, createUpstreamPools } from '../../src/proxy/route.js';
import { createUpgradeHandler, type UpgradeHandler } from '../../src/proxy/upgrade/handle-upgrade.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { createOAuth2Client } from '../../src/tokens/providers/oauth2-client.js';
import { TokenManager } from '../../src/tokens/token-manager.js';
import type { FakeProvider } from '../helpers/fake-provider.js';
import { refusingPort } from '../helpers/ports.js';
import { capturingLogger, eventually } from '../helpers/start-proxy.js';
import { CLIENT_SECRET, provider, sample } from './token-fixtures.js';

// ---------------------------------------------------------------------------------------------------------
// The harness: what the tests need of a proxy, so the same tests can later run against the real app.

interface WebSocketProxy {
  /** ws://127.0.0.1:port */
  readonly url: string;
  readonly fake: FakeProvider;
  readonly logs: Record<string, unknown>[];
  rawLogs(): string;
  metricsText(): Promise<string>;
  /** What SIGTERM does to upgraded connections. */
  closeAll(timeoutMs: number): Promise<void>;
  readonly openCount: number;
}

interface ProxyOptions {
  target: string;
  /** Extra lines under the upstream (YAML, two-space indented by the caller's nesting). */
  upstream?: string[];
  /** Extra top-level lines. */
  top?: string[];
}

/** The upgrade handler behind an http.Server, with one route `/chat` and the real token core. */
async function startWebSocketProxy(options: ProxyOptions): Promise<WebSocketProxy> {
  const fake = await provider({ kind: 'collaborate' });
  const yaml = [
    'listen: 127.0.0.1:0',
    'store: { type: memory }',
    ...(options.top ?? []),
    'upstreams:',
    '  chat:',
    `    target: ${options.target}`,
    ...(options.upstream ?? []).map((line) => `    ${line}`),
    '    auth:',
    '      preset: collaborate',
    `      tokenUrl: ${fake.tokenUrl}`,
    '      clientId: client-id',
    `      clientSecret: ${CLIENT_SECRET}`,
    `      refreshToken: ${fake.issueRefreshToken()}`,
  ].join('\n');
  const config = parseConfig(yaml, { env: {} });
  const { logger, lines } = capturingLogger();
  const metrics = createMetrics();
  const store = createMemoryStore();
  const upstream = config.upstreams[0]!;
  const client = createOAuth2Client(upstream.auth, { upstream: upstream.name, logger });
  const manager = new TokenManager({ upstream, store, client, logger, metrics: metrics.tokens, owner: 'websocket-test' });
  await manager.start();
  const route = createRoute(upstream, manager, metrics, {
    inboundKeyHeader: config.inboundAuth.header,
    pools: createUpstreamPools(upstream, logger),
  });
  const handler: UpgradeHandler = createUpgradeHandler({
    resolveTarget: createTargetResolver([route]),
    authenticate: createInboundAuth(config.inboundAuth),
    logger,
    metrics,
    maxUpgradedConnections: config.limits.maxUpgradedConnections,
  });
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => handler.handle(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(async () => {
    await handler.closeAll(1000);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    manager.stop();
    await Promise.all([route.close(), client.close()]);
    await store.close();
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fake,
    get logs() {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    rawLogs: () => lines.join('\n'),
    metricsText: () => metrics.registry.metrics(),
    closeAll: (timeoutMs) => handler.closeAll(timeoutMs),
    get openCount() {
      return handler.openCount;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The upstream: a ws server that records handshakes, can refuse them, and echoes messages.

interface Closed {
  code: number;
  reason: string;
}

interface UpstreamConnection {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  readonly messages: { data: Buffer; isBinary: boolean }[];
  /** Bytes the upstream has read from the proxy since the handshake. */
  bytesRead(): number;
}

interface WsUpstream {
  /** http://127.0.0.1:port/base */
  readonly target: string;
  readonly handshakes: { url: string; headers: IncomingHttpHeaders }[];
  /** Answers to the next handshakes instead of 101, in order. */
  readonly refusals: { status: number; body: string }[];
  /** Echo every message back (the default). */
  echo: boolean;
  nextConnection(): Promise<UpstreamConnection>;
}

async function startWsUpstream(): Promise<WsUpstream> {
  const wss = new WebSocketServer({ noServer: true });
  const waiting: ((connection: UpstreamConnection) => void)[] = [];
  const arrived: UpstreamConnection[] = [];
  const upstream: WsUpstream = {
    target: '',
    handshakes: [],
    refusals: [],
    echo: true,
    nextConnection: () =>
      new Promise((resolve) => {
        const ready = arrived.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
  };
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    socket.on('error', () => undefined);
    upstream.handshakes.push({ url: req.url ?? '', headers: req.headers });
    const refusal = upstream.refusals.shift();
    if (refusal) {
      socket.end(
        `HTTP/1.1 ${refusal.status} Refused\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(refusal.body)}\r\n` +
          `x-upstream: yes\r\nconnection: close\r\n\r\n${refusal.body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const messages: UpstreamConnection['messages'] = [];
      const closed = new Promise<Closed>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
      ws.on('error', () => undefined);
      ws.on('message', (data: RawData, isBinary) => {
        const buffer = toBuffer(data);
        messages.push({ data: buffer, isBinary });
        if (upstream.echo) ws.send(buffer, { binary: isBinary });
      });
      const tcp = socket as Socket;
      const base = tcp.bytesRead;
      const connection = { ws, closed, messages, bytesRead: () => tcp.bytesRead - base };
      const next = waiting.shift();
      if (next) next(connection);
      else arrived.push(connection);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(async () => {
    for (const client of wss.clients) client.terminate();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return Object.assign(upstream, { target: `http://127.0.0.1:${(server.address() as AddressInfo).port}/base` });
}

// ---------------------------------------------------------------------------------------------------------
// Client helpers.

interface Client {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  /** The next message, as a Buffer with its kind. */
  next(): Promise<{ data: Buffer; isBinary: boolean }>;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Opens a client and waits for 'open'; rejects with the status when the handshake is answered otherwise. */
async function openClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(url, { headers });
  ws.on('error', () => undefined);
  const queue: { data: Buffer; isBinary: boolean }[] = [];
  const waiting: ((message: { data: Buffer; isBinary: boolean }) => void)[] = [];
  ws.on('message', (data: RawData, isBinary) => {
    const message = { data: toBuffer(data), isBinary };
    const next = waiting.shift();
    if (next) next(message);
    else queue.push(message);
  });
  const closed = new Promise<Closed>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`handshake answered ${res.statusCode}`)));
    ws.once('error', reject);
  });
  onTestFinished(() => ws.terminate());
  return {
    ws,
    closed,
    next: () =>
      new Promise((resolve) => {
        const ready = queue.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
  };
}

interface Refused {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A handshake the proxy (or the upstream) answers with something other than 101. */
function refusedHandshake(url: string, headers: Record<string, string> = {}): Promise<Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('error', () => undefined);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the handshake succeeded'));
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
  });
}

/** One WebSocket frame as a client writes it (masked). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const key = randomBytes(4);
  const length = payload.length;
  const head =
    length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  return Buffer.concat([head, key, Buffer.from(payload.map((byte, i) => byte ^ key[i % 4]!))]);
}

/** A raw client socket that did the handshake by hand (sending `afterHandshake` in the same write). */
async function rawWebSocket(url: string, afterHandshake: Buffer = Buffer.alloc(0)): Promise<{ socket: Socket; received: () => Buffer }> {
  const { hostname, port, pathname } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  onTestFinished(() => void socket.destroy());
  await once(socket, 'connect');
  const handshake =
    `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  socket.write(Buffer.concat([Buffer.from(handshake, 'latin1'), afterHandshake]));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const received = (): Buffer => Buffer.concat(chunks);
  await eventually(() => received().includes('\r\n\r\n'), 5000, 'the 101');
  expect(received().toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  return { socket, received: () => received().subarray(received().indexOf('\r\n\r\n') + 4) };
}

async function setup(options: Omit<ProxyOptions, 'target'> = {}): Promise<{ proxy: WebSocketProxy; upstream: WsUpstream }> {
  const upstream = await startWsUpstream();
  const proxy = await startWebSocketProxy({ ...options, target: upstream.target });
  return { proxy, upstream };
}

const SERVER_CLOSES = /websocket closed/;

// ---------------------------------------------------------------------------------------------------------

describe('websocket forwarding: data', () => {
  it('text and binary messages both ways; the client masks, the server reads the same bytes; path and query mapped', async () => {
    const { proxy, upstream } = await setup();
    const client = await openClient(`${proxy.url}/chat/room/7?since=3`);
    const server = await upstream.nextConnection();
    expect(upstream.handshakes[0]?.url).toBe('/base/room/7?since=3');

    client.ws.send('héllo, upstream');
    expect(await client.next()).toEqual({ data: Buffer.from('héllo, upstream'), isBinary: false });
    const binary = randomBytes(4096);
    client.ws.send(binary);
    expect(await client.next()).toEqual({ data: binary, isBinary: true });
    // ws servers refuse unmasked client frames (RFC 6455 §5.1): these arrived masked, as the client sent them.
    expect(server.messages).toEqual([
      { data: Buffer.from('héllo, upstream'), isBinary: false },
      { data: binary, isBinary: true },
    ]);

    server.ws.send('from the upstream');
    expect(await client.next()).toEqual({ data: Buffer.from('from the upstream'), isBinary: false });
    server.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    expect(await client.next()).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true });
  });

  it('fragmented messages both ways arrive whole', async () => {
    const { proxy, upstream } = await setup();
    const client = await openClient(`${proxy.url}/chat/fragments`);
    const server = await upstream.nextConnection();

    client.ws.send('first ', { fin: false });
    client.ws.send('second ', { fin: false });
    client.ws.send('last', { fin: true });
    expect(await client.next()).toEqual({ data: Buffer.from('first second last'), isBinary: false });
    expect(server.messages).toHaveLength(1);

    upstream.echo = false;
    server.ws.send(Buffer.from('ab'), { binary: true, fin: false });
    server.ws.send(Buffer.from('cd'), { binary: true, fin: true });
    expect(await client.next()).toEqual({ data: Buffer.from('abcd'), isBinary: true });
  });

  it('ping and pong both ways, with their payloads', async () => {
    const { proxy, upstream } = await setup();
    const client = await openClient(`${proxy.url}/chat/ping`);
    const server = await upstream.nextConnection();

    const pong = once(client.ws, 'pong');
    client.ws.ping('from-client');
    expect(toBuffer((await pong)[0] as Buffer).toString()).toBe('from-client');

    const serverPong = once(server.ws, 'pong');
    const clientPing = once(client.ws, 'ping');
    server.ws.ping('from-server');
    expect(toBuffer((await clientPing)[0] as Buffer).toString()).toBe('from-server');
    expect(toBuffer((await serverPong)[0] as Buffer).toString()).toBe('from-server');
  });

  it('a 1 MiB message both ways, byte for byte', async () => {
    const { proxy, upstream } = await setup();
    const client = await openClient(`${proxy.url}/chat/large`);
    const server = await upstream.nextConnection();
    const large = randomBytes(1024 * 1024);
    client.ws.send(large);
    const echoed = await client.next();
    expect(echoed.data.equals(large)).toBe(true);
    expect(server.messages[0]?.data.equals(large)).toBe(true);
  });

  it('bytes the client sent in the same packet as its handshake reach the upstream', async () => {
    const { proxy, upstream } = await setup();
    const early = clientFrame(0x1, Buffer.from('sent before the 101'));
    const raw = await rawWebSocket(`${proxy.url}/chat/early`, early);
    const server = await upstream.nextConnection();
    await eventually(() => server.messages.length === 1, 5000, 'the early message');
    expect(server.messages[0]?.data.toString()).toBe('sent before the 101');
    // And the echo comes back unmasked, as a server frame.
    await eventually(() => raw.received().length >= 2 + 19, 5000, 'the echo');
    expect(raw.received().subarray(0, 2)).toEqual(Buffer.from([0x81, 19]));
  });
});

describe('websocket forwarding: credentials', () => {
  it("the upstream gets the current bearer token; the client's Authorization and Proxy-Authorization never arrive, nor in logs", async () => {
    const { proxy, upstream } = await setup();
    const client = await openClient(`${proxy.url}/chat/auth`, {
      authorization: 'Bearer client-own-token',
      'proxy-authorization': 'Basic Y2xpZW50OnNlY3JldA==',
      'x-custom': 'kept',
    });
    await upstream.nextConnection();
    const headers = upstream.handshakes[0]?.headers ?? {};
    const issued = proxy.fake.issuedTokens.filter((token) => token.startsWith('collaborate-at-'));
    expect(issued).toHaveLength(1);
    expect(headers.authorization).toBe(`Bearer ${issued[0]}`);
    expect(headers['proxy-authorization']).toBeUndefined();
    expect(headers['x-custom']).toBe('kept');
    expect(headers['sec-websocket-key']).toBeDefined();
    expect(headers.upgrade).toBe('websocket');

    client.ws.close(4001, 'done');
    await client.closed;
    await eventually(() => proxy.rawLogs().match(SERVER_CLOSES) !== null, 5000, 'the close line');
    const logs = proxy.rawLogs();
    for (const secret of [...proxy.fake.issuedTokens, 'client-own-token', 'Y2xpZW50OnNlY3JldA==', CLIENT_SECRET]) {
      expect(logs).not.toContain(secret);
    }
  });

  it('401 on the first handshake: exactly one refresh and one replay with the new token, then connected', async () => {
    const { proxy, upstream } = await setup();
    upstream.refusals.push({ status: 401, body: 'token expired' });
    const client = await openClient(`${proxy.url}/chat/replay`);
    await upstream.nextConnection();

    expect(proxy.fake.counters.tokenCalls).toBe(2);
    expect(upstream.handshakes).toHaveLength(2);
    const [rejected, replayed] = upstream.handshakes.map((handshake) => handshake.headers);
    expect(replayed?.authorization).not.toBe(rejected?.authorization);
    expect(replayed?.authorization).toBe(`Bearer ${proxy.fake.issuedTokens.filter((t) => t.startsWith('collaborate-at-'))[1]}`);
    // The client's own key is sent again, so the upstream's Sec-WebSocket-Accept matches it.
    expect(replayed?.['sec-websocket-key']).toBe(rejected?.['sec-websocket-key']);

    client.ws.send('after the replay');
    expect((await client.next()).data.toString()).toBe('after the replay');
    const metrics = await proxy.metricsText();
    expect(sample(metrics, 'oauth_sidecar_websocket_upgrades_total', { upstream: 'chat', outcome: 'replayed' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_replays_total', { upstream: 'chat', outcome: 'accepted' })).toBe(1);
    expect(proxy.logs.find((line) => line.event === 'websocket_upgrade')).toMatchObject({ status: 101, replayed: true });
  });

  it('403 twice: one refresh, one replay, and the client gets the second 403 as the upstream sent it', async () => {
    const { proxy, upstream } = await setup();
    upstream.refusals.push({ status: 403, body: 'forbidden, first' }, { status: 403, body: 'forbidden, second' });
    const refused = await refusedHandshake(`${proxy.url}/chat/forbidden`);
    expect(refused.status).toBe(403);
    expect(refused.body).toBe('forbidden, second');
    expect(refused.headers['x-upstream']).toBe('yes');
    expect(upstream.handshakes).toHaveLength(2);
    expect(proxy.fake.counters.tokenCalls).toBe(2);
    const metrics = await proxy.metricsText();
    expect(sample(metrics, 'oauth_sidecar_websocket_upgrades_total', { upstream: 'chat', outcome: 'refused_status' })).toBe(1);
    expect(proxy.openCount).toBe(0);
  });

  it('a non-101 answer that is not a token rejection goes to the client at once, without a refresh', async () => {
    const { proxy, upstream } = await setup();
    upstream.refusals.push({ status: 404, body: 'no such room' });
    const refused = await refusedHandshake(`${proxy.url}/chat/nowhere`);
    expect(refused).toMatchObject({ status: 404, body: 'no such room' });
    expect(upstream.handshakes).toHaveLength(1);
    expect(proxy.fake.counters.tokenCalls).toBe(1);
  });
});

describe('websocket forwarding: the proxy closes', () => {
  it('idle timeout: close frame 1001 to both sides', async () => {
    const { proxy, upstream } = await setup({ upstream: ['websocket: { idleTimeoutMs: 300 }'] });
    const client = await openClient(`${proxy.url}/chat/idle`);
    const server = await upstream.nextConnection();
    expect((await client.closed).code).toBe(1001);
    expect((await server.closed).code).toBe(1001);
    await eventually(() => proxy.openCount === 0, 5000, 'the connection to be gone');
    expect(sample(await proxy.metricsText(), 'oauth_sidecar_websocket_closes_total', { upstream: 'chat', reason: 'idle' })).toBe(1);
    expect(proxy.logs.find((line) => line.event === 'websocket_closed')).toMatchObject({ reason: 'idle', upstream: 'chat' });
  });

  it('max lifetime: close frame 1001 to both sides, even while messages flow', async () => {
    const { proxy, upstream } = await setup({ upstream: ['websocket: { maxLifetimeMs: 400 }'] });
    const client = await openClient(`${proxy.url}/chat/old`);
    const server = await upstream.nextConnection();
    const chatter = setInterval(() => client.ws.readyState === WebSocket.OPEN && client.ws.send('still here'), 50);
    onTestFinished(() => clearInterval(chatter));
    expect((await client.closed).code).toBe(1001);
    expect((await server.closed).code).toBe(1001);
    clearInterval(chatter);
    await eventually(() => proxy.openCount === 0, 5000, 'the connection to be gone');
    const metrics = await proxy.metricsText();
    expect(sample(metrics, 'oauth_sidecar_websocket_closes_total', { upstream: 'chat', reason: 'lifetime' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_websocket_connections', { upstream: 'chat' })).toBe(0);
  });

  it('closeAll (SIGTERM): both sides of every connection get close code 1001, and it resolves once all are closed', async () => {
    const { proxy, upstream } = await setup();
    const clients = [await openClient(`${proxy.url}/chat/a`), await openClient(`${proxy.url}/chat/b`)];
    const servers = [await upstream.nextConnection(), await upstream.nextConnection()];
    expect(proxy.openCount).toBe(2);
    await proxy.closeAll(5000);
    expect(proxy.openCount).toBe(0);
    for (const client of clients) expect((await client.closed).code).toBe(1001);
    for (const server of servers) expect((await server.closed).code).toBe(1001);
    expect(sample(await proxy.metricsText(), 'oauth_sidecar_websocket_closes_total', { upstream: 'chat', reason: 'shutdown' })).toBe(2);
    // And no new handshake is taken meanwhile.
    expect((await refusedHandshake(`${proxy.url}/chat/late`)).status).toBe(503);
  });

  it('a close frame waits for the end of the frame the client is in the middle of', async () => {
    const { proxy, upstream } = await setup();
    const message = Buffer.alloc(1000, 'x');
    const frame = clientFrame(0x2, message);
    const raw = await rawWebSocket(`${proxy.url}/chat/mid-frame`);
    const server = await upstream.nextConnection();
    upstream.echo = false;
    raw.socket.write(frame.subarray(0, 100));
    // Once the upstream has the first 100 bytes, the proxy has passed them: it is inside the frame.
    await eventually(() => server.bytesRead() >= 100, 5000, 'the first part of the frame upstream');
    const closing = proxy.closeAll(5000);
    // The close frame to the client is due at once (the upstream sent nothing), and arrives first.
    await eventually(() => raw.received().length >= 4, 5000, 'the close frame');
    raw.socket.write(frame.subarray(100));
    expect(await server.closed).toMatchObject({ code: 1001 });
    expect(server.messages).toHaveLength(1);
    expect(server.messages[0]?.data.equals(message)).toBe(true);
    // The client got an unmasked close frame with code 1001.
    expect(raw.received().subarray(0, 1)).toEqual(Buffer.from([0x88]));
    expect(raw.received().readUInt16BE(2)).toBe(1001);
    await closing;
  });

  it('the side that closes is counted: the client, then the upstream', async () => {
    const { proxy, upstream } = await setup();
    const first = await openClient(`${proxy.url}/chat/client-closes`);
    const firstServer = await upstream.nextConnection();
    first.ws.close(4001, 'client done');
    expect(await firstServer.closed).toEqual({ code: 4001, reason: 'client done' });

    const second = await openClient(`${proxy.url}/chat/upstream-closes`);
    const secondServer = await upstream.nextConnection();
    secondServer.ws.close(4002, 'upstream done');
    expect(await second.closed).toEqual({ code: 4002, reason: 'upstream done' });

    await eventually(() => proxy.openCount === 0, 5000, 'both connections to be gone');
    const metrics = await proxy.metricsText();
    expect(sample(metrics, 'oauth_sidecar_websocket_closes_total', { upstream: 'chat', reason: 'client' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_websocket_closes_total', { upstream: 'chat', reason: 'upstream' })).toBe(1);
    const closes = proxy.logs.filter((line) => line.event === 'websocket_closed');
    expect(closes.map((line) => line.reason).sort()).toEqual(['client', 'upstream']);
    expect(closes[0]).toMatchObject({ bytesFromClient: expect.any(Number), bytesFromUpstream: expect.any(Number) });
  });
});

describe('websocket forwarding: refusals', () => {
  it('with inbound keys: no key, 401 CLIENT_UNAUTHENTICATED; the right key connects, and the key never reaches the upstream', async () => {
    const key = 'inbound-key-3f9a';
    const digest = createHash('sha256').update(key).digest('hex');
    const { proxy, upstream } = await setup({ top: [`inboundAuth: { keys: [{ name: app, sha256: ${digest} }] }`] });
    const refused = await refusedHandshake(`${proxy.url}/chat/keyless`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'CLIENT_UNAUTHENTICATED' } });
    expect(upstream.handshakes).toHaveLength(0);

    await openClient(`${proxy.url}/chat/keyed`, { 'x-sidecar-key': key });
    expect(upstream.handshakes).toHaveLength(1);
    expect(upstream.handshakes[0]?.headers['x-sidecar-key']).toBeUndefined();
    expect(proxy.rawLogs()).not.toContain(key);
  });

  it('beyond limits.maxUpgradedConnections: 503 TOO_MANY_UPGRADES with Retry-After; the place is free again after a close', async () => {
    const { proxy, upstream } = await setup({ top: ['limits: { maxUpgradedConnections: 1 }'] });
    const first = await openClient(`${proxy.url}/chat/one`);
    await upstream.nextConnection();
    const refused = await refusedHandshake(`${proxy.url}/chat/two`);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('TOO_MANY_UPGRADES');
    expect(body.error.message).toContain('limits.maxUpgradedConnections');
    expect(upstream.handshakes).toHaveLength(1);
    expect(sample(await proxy.metricsText(), 'oauth_sidecar_websocket_upgrades_total', { upstream: 'chat', outcome: 'limit' })).toBe(1);

    first.ws.close();
    await first.closed;
    await eventually(() => proxy.openCount === 0, 5000, 'the first connection to be gone');
    await openClient(`${proxy.url}/chat/three`);
  });

  it('an upgrade to anything but websocket gets 501 NOT_SUPPORTED', async () => {
    const { proxy, upstream } = await setup();
    const { port } = new URL(proxy.url);
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path: '/chat/h2',
        headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': '' },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    });
    expect(response.status).toBe(501);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'NOT_SUPPORTED' } });
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('no route: 404 ROUTE_NOT_FOUND; dot segments: 400; both as JSON, nothing sent upstream', async () => {
    const { proxy, upstream } = await setup();
    const missing = await refusedHandshake(`${proxy.url}/elsewhere/socket`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'ROUTE_NOT_FOUND' } });
    const raw = await new Promise<string>((resolve) => {
      const { port } = new URL(proxy.url);
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.write(
        'GET /chat/%2e%2e/admin HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain('"BAD_REQUEST_TARGET"');
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('upstream unreachable: 502 UPSTREAM_UNREACHABLE, as for requests', async () => {
    const refusing = await refusingPort();
    const proxy = await startWebSocketProxy({ target: `http://127.0.0.1:${refusing.port}` });
    const refused = await refusedHandshake(`${proxy.url}/chat/down`);
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'UPSTREAM_UNREACHABLE' } });
    expect(sample(await proxy.metricsText(), 'oauth_sidecar_websocket_upgrades_total', { upstream: 'chat', outcome: 'error' })).toBe(1);
  });
});
