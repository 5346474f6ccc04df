/** Starts a server on an endpoint; resolves with the address it got (port 0 picks a free one). */
import type { Server } from 'node:net';
import type { Endpoint } from './endpoint.js';

export function listen(server: Server, endpoint: Endpoint): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(endpoint.port, endpoint.host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : endpoint);
    });
  });
}
