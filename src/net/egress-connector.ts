/**
 * How a new connection to one peer is made: straight to it, or through an HTTP CONNECT tunnel (RFC 9110
 * §9.3.6) opened on the egress proxy; then TLS with the peer's own settings (CA bundle, client certificate,
 * servername, minimum version). undici's pools call this once per new connection, so nothing here is on the
 * per-request path.
 *
 * Why not undici's ProxyAgent: its dispatch() turns the header list into an object, so a header sent twice
 * would lose a value, and it wraps every pool in its own Agent. A connector keeps the route's Pool as it is.
 * Plain http:// targets are tunnelled too, so a proxy sees only CONNECTs (most allow them only to 443).
 */
import { Pool, buildConnector } from 'undici';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { EgressConfig, ProxyRoute } from '../config/types.js';
import { ProxyError } from '../errors.js';
import { describeHandshakeReset, describeTlsFailure } from './egress-failure.js';

export interface Connector {
  readonly connect: buildConnector.connector;
  close(): Promise<void>;
}

export interface ConnectorOptions {
  readonly egress: EgressConfig;
  /** Options for tls.connect from the peer's tls settings (undefined: Node's defaults, TLS 1.2 minimum). */
  readonly tls: ConnectionOptions | undefined;
  readonly timeoutMs: number;
  /** "upstream apiax" or "the token endpoint of apiax", for messages. */
  readonly peer: string;
}

export function createConnector(options: ConnectorOptions): Connector {
  const { egress, peer } = options;
  const tls: ConnectionOptions = { minVersion: 'TLSv1.2', ...options.tls };
  const connectTls = buildConnector({ ...(tls as buildConnector.BuildOptions), timeout: options.timeoutMs });

  // The peer's TLS failures become one clear error naming the setting; the rest pass as they are.
  const secure: buildConnector.connector = (connectOptions, callback) =>
    connectTls({ ...connectOptions, servername: tls.servername ?? connectOptions.servername }, (error, socket) => {
      const overTls = connectOptions.protocol === 'https:';
      if (error) {
        const tlsProblem = describeTlsFailure(error, egress, peer) ?? (overTls ? describeHandshakeReset(error, egress, peer) : undefined);
        callback(tlsProblem ? new ProxyError('UPSTREAM_TLS_FAILED', tlsProblem, { cause: error }) : error, null);
        return;
      }
      // A TLS 1.3 server refuses a client certificate after the handshake: its alert arrives as an 'error'
      // on the first read, followed by the end of the stream, and undici reports only that end ("other side
      // closed"), losing the alert. A socket that failed is finished: destroying it at once keeps the alert
      // as the error undici gives the request, so the refusal can be named.
      if (overTls) socket.once('error', (failure) => socket.destroy(failure));
      callback(null, socket);
    });

  if (egress.proxy.kind === 'direct') return { connect: secure, close: async () => {} };
  return tunnelConnector(egress.proxy, secure, options);
}

function tunnelConnector(
  proxy: Extract<ProxyRoute, { kind: 'proxy' }>,
  secure: buildConnector.connector,
  options: ConnectorOptions,
): Connector {
  // CONNECT answers hand the socket over, so each tunnel takes a fresh connection to the proxy.
  const proxyPool = new Pool(proxy.origin, { connect: { timeout: options.timeoutMs } });
  const via = `egress proxy ${proxy.origin} (from ${proxy.source})`;
  const refused = (message: string, cause?: unknown) =>
    new ProxyError('EGRESS_PROXY_FAILED', `${options.peer}: ${via} ${message}`, cause === undefined ? undefined : { cause });

  const connect: buildConnector.connector = (connectOptions, callback) => {
    const authority = `${connectOptions.hostname}:${connectOptions.port || (connectOptions.protocol === 'https:' ? 443 : 80)}`;
    const headers: Record<string, string> = { host: authority };
    if (proxy.authorization) headers['proxy-authorization'] = proxy.authorization.reveal();
    proxyPool
      .connect({ path: authority, headers, signal: AbortSignal.timeout(options.timeoutMs) })
      .then(({ statusCode, socket: tunnel }) => {
        // undici types the upgraded stream as a Duplex; over HTTP/1.1 it is the proxy connection's net.Socket.
        const socket = tunnel as Socket;
        if (statusCode !== 200) {
          socket.destroy();
          callback(refused(refusalText(statusCode, authority, proxy)), null);
        } else if (connectOptions.protocol === 'https:') secure({ ...connectOptions, httpSocket: socket }, callback);
        else callback(null, socket);
      })
      .catch((error: unknown) => callback(refused(`cannot be reached or did not answer (${describeCode(error)})`, error), null));
  };
  return { connect, close: () => proxyPool.close() };
}

function refusalText(status: number, authority: string, proxy: Extract<ProxyRoute, { kind: 'proxy' }>): string {
  if (status === 407) {
    if (proxy.authorization) return 'refused the proxy credentials (HTTP 407); check the username and password given for it';
    // A proxy from the environment takes its credentials in the URL; a configured one from username and passwordFile.
    const where = proxy.source.startsWith('upstreams.')
      ? `${proxy.source}.username and ${proxy.source}.passwordFile`
      : `the ${proxy.source} URL`;
    return `wants credentials (HTTP 407); give them in ${where}`;
  }
  return `refused the tunnel to ${authority} (HTTP ${status})`;
}

function describeCode(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'error';
}
