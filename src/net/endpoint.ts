/** host:port, as written in proxy.yaml and on command lines, and back. IPv6 hosts are bracketed. */

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:8080" or "[::1]:8080" → { host, port }. The text is validated by the config schema first. */
export function parseEndpoint(value: string): Endpoint {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(colon + 1)) };
}

export function formatHostPort(endpoint: Endpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

export function httpUrl(endpoint: Endpoint): string {
  return `http://${formatHostPort(endpoint)}`;
}
