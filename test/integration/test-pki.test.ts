/**
 * The throwaway PKI (test/helpers/test-pki.ts) does what the TLS tests will lean on: a server certificate that
 * node accepts for 127.0.0.1 under its CA, client certificates a mutual-TLS server accepts and identifies,
 * refusal under another CA, and keys that open only with their passphrase.
 */
import { once } from 'node:events';
import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestCa, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let caA: TestCa;
let caB: TestCa;
let server: https.Server;
let port: number;

beforeAll(async () => {
  pki = makeTestPki();
  caA = pki.newCa('ca-a');
  caB = pki.newCa('ca-b');
  const serving = caA.issueServer();
  // Client certificates are asked for but checked here, so a refused one is reported rather than cut off.
  server = https.createServer(
    { cert: serving.certPem, key: serving.keyPem, ca: caA.certPem, requestCert: true, rejectUnauthorized: false },
    (request, response) => {
      const socket = request.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          authorized: socket.authorized,
          error: socket.authorizationError ?? null,
          cn: peer.subject?.CN ?? null,
          serial: peer.serialNumber ?? null,
        }),
      );
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  return async () => {
    server.close();
    server.closeAllConnections();
  };
});
afterAll(() => {
  const dir = pki.dir;
  pki.remove();
  expect(existsSync(dir)).toBe(false);
});

function get(options: https.RequestOptions): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const request = https.get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    });
    request.on('error', reject);
  });
}

describe('the test PKI', () => {
  it('gives a mutual-TLS server under CA A a client certificate it accepts, with its CN and serial', async () => {
    const alice = caA.issueClient('alice');
    const answer = await get({ ca: caA.certPem, cert: alice.certPem, key: alice.keyPem });
    expect(answer).toEqual({ authorized: true, error: null, cn: 'alice', serial: alice.serialHex });
    // Two certificates from one CA are told apart by their serials.
    expect(caA.issueClient('alice').serialHex).not.toBe(alice.serialHex);
  });

  it('makes a client certificate from CA B that the server under CA A does not accept', async () => {
    const mallory = caB.issueClient('mallory');
    const answer = await get({ ca: caA.certPem, cert: mallory.certPem, key: mallory.keyPem });
    expect(answer).toMatchObject({ authorized: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', cn: 'mallory' });
  });

  it('makes a server certificate that a client trusting only CA B refuses', async () => {
    // A server that sends only its own certificate: the client cannot find the issuer.
    const alone = tls.connect({ host: '127.0.0.1', port: await serveWith(caA.issueServer()), ca: caB.certPem });
    const [leafOnly] = (await once(alone, 'error')) as [NodeJS.ErrnoException];
    expect(leafOnly.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // The mutual-TLS server sends CA A along (node adds it from `ca`): the client finds an untrusted root.
    const withChain = tls.connect({ host: '127.0.0.1', port, ca: caB.certPem });
    const [untrustedRoot] = (await once(withChain, 'error')) as [NodeJS.ErrnoException];
    expect(untrustedRoot.code).toBe('SELF_SIGNED_CERT_IN_CHAIN');
  });

  it('issues server certificates for the names asked for, checked by the client', async () => {
    const other = caA.issueServer({ names: ['api.test', '::1'] });
    const local = caA.issueServer();
    expect(other.commonName).toBe('api.test');
    expect(local.commonName).toBe('localhost');
    // The default certificate serves 127.0.0.1 (the server above); this one does not.
    const mismatch = tls.connect({ host: '127.0.0.1', port: await serveWith(other), ca: caA.certPem });
    const [error] = (await once(mismatch, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    const named = tls.connect({ host: '127.0.0.1', port: await serveWith(other), ca: caA.certPem, servername: 'api.test' });
    await once(named, 'secureConnect');
    expect(named.authorized).toBe(true);
    named.destroy();
  });

  it('encrypts a client key that loads only with its passphrase', () => {
    const bob = caA.issueClient('bob', { passphrase: 'correct horse' });
    expect(bob.keyPem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(() => createPrivateKey({ key: bob.keyPem, passphrase: 'correct horse' })).not.toThrow();
    expect(() => createPrivateKey({ key: bob.keyPem, passphrase: 'wrong' })).toThrow();
    expect(() => createPrivateKey({ key: bob.keyPem })).toThrow();
    expect(() => tls.createSecureContext({ cert: bob.certPem, key: bob.keyPem, passphrase: 'correct horse' })).not.toThrow();
    expect(caA.issueClient('carol').keyPem).toContain('BEGIN PRIVATE KEY');
  });
});

const extraServers: tls.Server[] = [];
afterAll(() => {
  for (const extra of extraServers) extra.close();
});

async function serveWith(issued: { certPem: string; keyPem: string }): Promise<number> {
  const extra = tls.createServer({ cert: issued.certPem, key: issued.keyPem }, (socket) => socket.end());
  extraServers.push(extra);
  extra.listen(0, '127.0.0.1');
  await once(extra, 'listening');
  return (extra.address() as AddressInfo).port;
}
