/**
 * A small configurable upstream for forwarding tests: a real HTTP server whose handler each test sets,
 * which records every request head as it arrives (before the body) and counts TCP connections. It does
 * not check tokens; `startRoutedProxy` puts the real proxy in front of it, with an Apiax fake provider
 * (public client, no secret) as the token endpoint, so the proxy holds a real bearer token.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider.js';
import { refusingPort } from './ports.js';
import { configYaml, startProxy, type RunningProxy } from './start-proxy.js';

export interface SeenRequest {
  readonly method: string;
  /** The request target exactly as received. */
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface PlainUpstream {
  /** e.g. http://127.0.0.1:40123 */
  readonly origin: string;
  readonly requests: SeenRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  setHandler(handler: UpstreamHandler): void;
  close(): Promise<void>;
}

/** Starts the upstream on 127.0.0.1:0 and registers its cleanup with the running test. */
export async function startPlainUpstream(handler: UpstreamHandler = echoHandler): Promise<PlainUpstream> {
  let current = handler;
  let connections = 0;
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    current(req, res);
  });
  server.on('connection', () => connections++);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  onTestFinished(close);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    setHandler(next) {
      current = next;
    },
    close,
  };
}

export interface EchoBody {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyLength: number;
  bodySha256: string;
  trailers: NodeJS.Dict<string>;
}

/** Answers with JSON describing the request; the body is hashed as it streams, never held. */
export function echoHandler(req: IncomingMessage, res: ServerResponse): void {
  void digest(req).then(
    ({ length, sha256 }) => {
      const echo: EchoBody = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyLength: length,
        bodySha256: sha256,
        trailers: req.trailers,
      };
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
    () => res.destroy(),
  );
}

/** Length and SHA-256 of a stream, without keeping it. */
export async function digest(stream: Readable): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { length, sha256: hash.digest('hex') };
}

/** Chunk `index` of a deterministic pseudo-random stream: every chunk differs, so reordering shows in the hash. */
export function patternChunk(index: number, size: number): Buffer {
  const chunk = Buffer.alloc(size);
  let state = (index + 1) * 2654435761;
  for (let i = 0; i < size; i += 4) {
    state = (state * 1103515245 + 12345) >>> 0;
    chunk.writeUInt32LE(state, i);
  }
  return chunk;
}

export interface RoutedProxy {
  readonly proxy: RunningProxy;
  readonly upstream: PlainUpstream;
  readonly provider: FakeProvider;
  /** The proxy URL of the route, e.g. http://127.0.0.1:40124/up */
  readonly routeUrl: string;
}

export interface RoutedProxyOptions {
  handler?: UpstreamHandler;
  /** Extra keys of the `up` upstream block, YAML at upstream-key indentation (e.g. "headersTimeoutMs: 300"). */
  extra?: string;
  /** Base path of the target on the plain upstream; default "/base", "" for the root. */
  basePath?: string;
  /** Overrides the target entirely (e.g. a closed port). */
  target?: string;
  /** Extra top-level YAML (e.g. "limits: { maxClientConnections: 2 }"), after the default listen/admin/store. */
  top?: string;
}

const DEFAULT_TOP = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\n';

/** Proxy route `/up` → plain upstream `/base`, tokens from an Apiax fake provider. */
export async function startRoutedProxy(options: RoutedProxyOptions = {}): Promise<RoutedProxy> {
  const provider = await startFakeProvider({ kind: 'apiax' });
  onTestFinished(() => provider.close());
  const upstream = await startPlainUpstream(options.handler);
  const extra = options.extra
    ? `\n${options.extra
        .trim()
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n')}`
    : '';
  const yaml = configYaml(
    `up:\n  target: ${options.target ?? `${upstream.origin}${options.basePath ?? '/base'}`}\n  auth:\n    preset: apiax\n    tokenUrl: ${provider.tokenUrl}\n    refreshToken: ${provider.issueRefreshToken()}${extra}`,
    `${DEFAULT_TOP}${options.top ?? ''}`,
  );
  const proxy = await startProxy(yaml);
  return { proxy, upstream, provider, routeUrl: `${proxy.url}/up` };
}

/** A port on which nothing listens, held for the running test so that no listener gets it meanwhile. */
export async function closedPort(): Promise<number> {
  return (await refusingPort()).port;
}

/**
 * A port whose TCP handshakes never complete: a child process listens with a backlog of 1 and then
 * blocks its event loop, so it never accepts; once the accept queue is full the kernel drops new SYNs
 * and connect() hangs, which is what a firewalled or dead host looks like.
 */
export async function blackholePort(): Promise<number> {
  // Writes to a pipe are synchronous on Linux, so the child is blocked as soon as we read its port.
  const script = `
    const server = require('node:net').createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(server.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
  });
  // Fill the accept queue (backlog + 1 on Linux); later handshakes are dropped.
  const fillers: Socket[] = [];
  onTestFinished(() => fillers.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 4; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  return port;
}
