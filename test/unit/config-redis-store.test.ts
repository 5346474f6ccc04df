import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { describeStore } from '../../src/store/describe-store.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const upstreams = `upstreams:
  apiax:
    target: https://api.apiax.io
    auth: { preset: apiax, tokenUrl: https://auth.apiax.io/token }
`;

function withStore(store: string): string {
  return `store:\n${store.replace(/^/gm, '  ')}\n${upstreams}`;
}

function problems(yaml: string): readonly string[] {
  try {
    parseConfig(yaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('store: redis', () => {
  it('accepts a URL and applies the defaults', () => {
    const config = parseConfig(withStore('type: redis\nurl: redis://127.0.0.1:6390/2'));
    expect(config.store).toMatchObject({ type: 'redis', keyPrefix: 'oauth-sidecar:', commandTimeoutMs: 500, encryptionKey: undefined });
    expect(config.store.type === 'redis' && config.store.url?.reveal()).toBe('redis://127.0.0.1:6390/2');
  });

  it('wants exactly one of url, sentinels or cluster, and a name with sentinels', () => {
    expect(problems(withStore('type: redis'))).toEqual(['store: set exactly one of url, sentinels (with name) or cluster']);
    expect(problems(withStore('type: redis\nurl: redis://a:1\ncluster: [{ host: a, port: 1 }]'))).toContain(
      'store: set exactly one of url, sentinels (with name) or cluster',
    );
    expect(problems(withStore('type: redis\nsentinels: [{ host: a, port: 26379 }]'))).toEqual([
      'store.name: sentinels need the master group name',
    ]);
    expect(problems(withStore('type: redis\nurl: http://a:1'))).toEqual(['store.url: expected a redis:// or rediss:// URL']);
    expect(problems(withStore('type: redis\nurl: redis://a:1\nkeyPrefix: "a{b}"'))).toEqual([
      'store.keyPrefix: must not contain braces or spaces (they delimit the hash tag)',
    ]);
  });

  it('reads the encryption key as hex or base64, and refuses other lengths', () => {
    const hex = 'ab'.repeat(32);
    const fromHex = parseConfig(withStore(`type: redis\nurl: redis://a:1\nencryptionKey: "${hex}"`)).store;
    expect(fromHex.type === 'redis' && fromHex.encryptionKey?.toString('hex')).toBe(hex);
    const base64 = Buffer.alloc(32, 7).toString('base64');
    const fromBase64 = parseConfig(withStore(`type: redis\nurl: redis://a:1\nencryptionKey: "${base64}"`)).store;
    expect(fromBase64.type === 'redis' && fromBase64.encryptionKey?.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(problems(withStore('type: redis\nurl: redis://a:1\nencryptionKey: short'))).toEqual([
      'store.encryptionKey: must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -base64 32)',
    ]);
  });

  it('reads password and encryption key from …File twins, and never shows them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-redis-config-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'password'), 'Pw-7hK2q\n');
    writeFileSync(join(dir, 'key'), `${'cd'.repeat(32)}\n`);
    writeFileSync(
      join(dir, 'proxy.yaml'),
      withStore(
        'type: redis\nsentinels: [{ host: 127.0.0.1, port: 26379 }]\nname: mymaster\npasswordFile: password\nencryptionKeyFile: key',
      ),
    );
    const config = loadConfigFile(join(dir, 'proxy.yaml'));
    expect(config.store.type === 'redis' && config.store.password?.reveal()).toBe('Pw-7hK2q');
    expect(JSON.stringify(config)).not.toContain('Pw-7hK2q');
    expect(describeStore(config.store)).toBe(
      'redis sentinel "mymaster" via 127.0.0.1:26379, key prefix "oauth-sidecar:", records encrypted (AES-256-GCM)',
    );
  });

  it('hides a password in the URL when describing the store', () => {
    const config = parseConfig(withStore('type: redis\nurl: "redis://user:S3cret-pw@10.0.0.1:6379/0"'));
    const described = describeStore(config.store);
    expect(described).not.toContain('S3cret-pw');
    expect(described).toContain('redis://user:***@10.0.0.1:6379/0');
  });
});
