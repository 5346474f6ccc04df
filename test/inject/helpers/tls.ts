/** A throwaway CA and serving certificate for 127.0.0.1/localhost, made with openssl in a temp dir. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';

export interface TestCert {
  readonly dir: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Call inside a test or hook: the directory is removed when it finishes. */
export function makeTestCert(): TestCert {
  const dir = mkdtempSync(path.join(tmpdir(), 'inject-tls-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  );
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=localhost', '-keyout', file('tls.key'), '-out', file('tls.csr'));
  writeFileSync(file('ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-sha256',
    '-days',
    '1',
    '-in',
    file('tls.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-extfile',
    file('ext'),
    '-out',
    file('tls.crt'),
  );
  return {
    dir,
    caPem: readFileSync(file('ca.crt'), 'utf8'),
    certPem: readFileSync(file('tls.crt'), 'utf8'),
    keyPem: readFileSync(file('tls.key'), 'utf8'),
    certFile: file('tls.crt'),
    keyFile: file('tls.key'),
  };
}
