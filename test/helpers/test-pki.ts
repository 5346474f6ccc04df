/**
 * A throwaway PKI for TLS tests: any number of CAs, each issuing server certificates (SANs for localhost and
 * 127.0.0.1 by default) and client certificates (optionally with a passphrase-encrypted key), made with
 * /usr/bin/openssl in a temp dir. EC P-256 keys and one openssl run per certificate keep it fast (about
 * 20 ms each). Certificates are valid for one day from now.
 *
 * Cleanup: called inside a test, the directory is removed when that test finishes. Called from a hook or at
 * file level, give `remove` back to vitest (`beforeAll(() => { pki = makeTestPki(); return pki.remove; })`)
 * or call it in afterAll; a directory nobody removed is removed when the test process exits.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';

export interface Issued {
  readonly commonName: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  /** PKCS#8; encrypted (AES-256-CBC) when a passphrase was given. */
  readonly keyPem: string;
  /** As node reports it (`getPeerCertificate().serialNumber`, `X509Certificate.serialNumber`): upper-case hex. */
  readonly serialHex: string;
}

export interface TestCa {
  readonly name: string;
  readonly certFile: string;
  readonly certPem: string;
  /** serverAuth; SANs from `names` (IP addresses become IP SANs), default localhost and 127.0.0.1; CN is the first name. */
  issueServer(options?: { names?: readonly string[] }): Issued;
  /** clientAuth, subject CN=commonName; the key is encrypted with `passphrase` when one is given. */
  issueClient(commonName: string, options?: { passphrase?: string }): Issued;
}

export interface TestPki {
  readonly dir: string;
  newCa(name: string): TestCa;
  /** Removes the directory (idempotent). */
  remove(): void;
}

const leftBehind = new Set<string>();
let exitHookInstalled = false;

/** See the header for where to call it and how the directory goes away. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'test-pki-'));
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    leftBehind.delete(dir);
  };
  leftBehind.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const left of leftBehind) rmSync(left, { recursive: true, force: true });
    });
  }
  try {
    onTestFinished(remove);
  } catch {
    // Not inside a test (a beforeAll hook, file level): the caller removes it, or the exit hook does.
  }
  const names = new Set<string>();
  return {
    dir,
    remove,
    newCa(name) {
      if (!/^[\w.-]+$/.test(name) || names.has(name)) throw new Error(`test-pki: CA name ${JSON.stringify(name)} is not a new plain name`);
      names.add(name);
      return makeCa(path.join(dir, name), name);
    },
  };
}

function makeCa(caDir: string, name: string): TestCa {
  mkdirSync(caDir);
  const certFile = path.join(caDir, 'ca.crt');
  const keyFile = path.join(caDir, 'ca.key');
  const extensions = ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash'];
  newCertificate({ dir: caDir, stem: 'ca', commonName: name, extensions });
  const certPem = readFileSync(certFile, 'utf8');
  let issuedCount = 0;

  const issue = (commonName: string, extensions: string[], passphrase?: string): Issued => {
    const stem = `${++issuedCount}-${commonName.replace(/[^\w.-]/g, '_')}`;
    const leafExtensions = [...extensions, 'authorityKeyIdentifier = keyid', 'subjectKeyIdentifier = hash'];
    newCertificate({ dir: caDir, stem, commonName, extensions: leafExtensions, issuer: { certFile, keyFile } });
    const leafCert = path.join(caDir, `${stem}.crt`);
    const leafKey = path.join(caDir, `${stem}.key`);
    if (passphrase !== undefined) {
      // Encrypted here rather than by openssl, so the passphrase never appears in a command line.
      const encrypted = createPrivateKey(readFileSync(leafKey)).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase });
      writeFileSync(leafKey, encrypted, { mode: 0o600 });
    }
    const leafPem = readFileSync(leafCert, 'utf8');
    return {
      commonName,
      certFile: leafCert,
      keyFile: leafKey,
      certPem: leafPem,
      keyPem: readFileSync(leafKey, 'utf8'),
      serialHex: new X509Certificate(leafPem).serialNumber,
    };
  };

  return {
    name,
    certFile,
    certPem,
    issueServer(options = {}) {
      const names = options.names ?? ['localhost', '127.0.0.1'];
      const first = names[0];
      if (first === undefined) throw new Error('test-pki: a server certificate needs at least one name');
      const san = names.map((entry) => (isIP(entry) ? `IP:${entry}` : `DNS:${entry}`)).join(',');
      return issue(first, [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${san}`,
      ]);
    },
    issueClient(commonName, options = {}) {
      return issue(
        commonName,
        ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth'],
        options.passphrase,
      );
    },
  };
}

interface NewCertificate {
  readonly dir: string;
  /** Writes <stem>.crt and <stem>.key (unencrypted PKCS#8) in dir. */
  readonly stem: string;
  readonly commonName: string;
  /** openssl x509v3 config lines. */
  readonly extensions: readonly string[];
  /** Self-signed when absent. */
  readonly issuer?: { readonly certFile: string; readonly keyFile: string };
}

/** One openssl run: a new P-256 key and its certificate, self-signed or signed by the issuer (`req -x509 -CA`, OpenSSL 3). */
function newCertificate({ dir, stem, commonName, extensions, issuer }: NewCertificate): void {
  if (!/^[\w .@-]+$/.test(commonName))
    throw new Error(`test-pki: common name ${JSON.stringify(commonName)} needs escaping; use a plain one`);
  const file = (extension: string) => path.join(dir, `${stem}.${extension}`);
  // Our own config, so the distribution's openssl.cnf adds no extension of its own (such as CA:TRUE on a leaf).
  writeFileSync(file('cnf'), ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', '[ext]', ...extensions, ''].join('\n'));
  // A positive 127-bit serial whose first byte is not zero, so its hex form is the same wherever it is printed.
  const serial = randomBytes(16);
  serial[0] = 0x10 + ((serial[0] ?? 0) % 0x70);
  // prettier-ignore
  const args = [
    'req', '-x509', '-new', '-config', file('cnf'), '-extensions', 'ext',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc', '-sha256', '-days', '1',
    '-subj', `/CN=${commonName}`, '-set_serial', `0x${serial.toString('hex')}`,
    '-keyout', file('key'), '-out', file('crt'),
    ...(issuer ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile] : []),
  ];
  execFileSync('/usr/bin/openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
