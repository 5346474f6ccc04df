/**
 * An https server on 127.0.0.1 standing in for an upstream behind TLS: a certificate from a test CA,
 * optionally demanding a client certificate, with a version range; it answers 200 and records each
 * request's bearer and the client certificate it saw. Closed when the running test finishes.
 */
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureVersion, TLSSocket } from 'node:tls';
import { onTestFinished } from 'vitest';
import type { Issued, TestCa } from './test-pki.js';

export interface SeenTlsRequest {
  readonly authorization: string | undefined;
  /** The client certificate's CN and serial, when one was presented. */
  readonly clientCn: string | undefined;
  readonly clientSerial: string | undefined;
}

export interface TlsUpstream {
  readonly origin: string;
  readonly port: number;
  /** host:port, as a CONNECT names it. */
  readonly authority: string;
  readonly requests: SeenTlsRequest[];
}

export interface TlsUpstreamOptions {
  /** Require a client certificate signed by this CA. */
  readonly clientCa?: TestCa;
  readonly minVersion?: SecureVersion;
  readonly maxVersion?: SecureVersion;
  readonly ciphers?: string;
}

/** An https target on 127.0.0.1 that answers 200 and records the bearer and client certificate of each request. */
export async function startTlsUpstream(serving: Issued, options: TlsUpstreamOptions = {}): Promise<TlsUpstream> {
  const requests: SeenTlsRequest[] = [];
  const server = https.createServer(
    {
      cert: serving.certPem,
      key: serving.keyPem,
      ...(options.clientCa && { ca: options.clientCa.certPem, requestCert: true, rejectUnauthorized: true }),
      ...(options.minVersion && { minVersion: options.minVersion }),
      ...(options.maxVersion && { maxVersion: options.maxVersion }),
      ...(options.ciphers && { ciphers: options.ciphers }),
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const presented = peer && Object.keys(peer).length > 0;
      requests.push({
        authorization: req.headers.authorization,
        clientCn: presented ? String(peer.subject.CN) : undefined,
        clientSerial: presented ? peer.serialNumber : undefined,
      });
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { origin: `https://127.0.0.1:${port}`, port, authority: `127.0.0.1:${port}`, requests };
}
