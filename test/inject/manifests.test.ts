/**
 * Every manifest in deploy/kubernetes is checked against the Kubernetes OpenAPI schemas, unknown fields
 * included, and the hand-written example sidecar is kept equal to the one the injector adds.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import { ADDRESS_IN_USE, retryOnAddressInUse } from '../helpers/ports.js';
import { redisCli } from '../helpers/redis-server.js';
import { sidecarContainer, sidecarVolumes } from '../../src/inject/sidecar-container.js';
import { unknownFieldProblems, validateWithSchema, type K8sObject } from './helpers/k8s-validate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/kubernetes');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

interface Doc {
  file: string;
  label: string;
  obj: K8sObject;
}

function loadDocs(): Doc[] {
  return yamlFiles(root).flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8')).map((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJS() as K8sObject;
      return { file, label: `${path.relative(root, file)}#${i} ${obj.kind}`, obj };
    }),
  );
}

/** A kustomize env file (NAME=value lines, # comments) as an object. */
function readEnvFile(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs make-credentials.sh; the file it writes is what kustomize turns into the sidecar's Secret. */
function makeCredentials(out: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('bash', [path.join(root, 'make-credentials.sh'), out], { encoding: 'utf8', timeout: 10_000 });
}

// The objects are checked against the schemas above; the assertions below read them as plain JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML, read by path in assertions
type Loose = any;

const isKustomization = (d: Doc) => d.obj.kind === 'Kustomization';
const rel = (file: string) => path.relative(root, file);

function find(docs: Doc[], kind: string, name: string): Record<string, Loose> {
  const doc = docs.find((d) => d.obj.kind === kind && (d.obj.metadata as { name?: string } | undefined)?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name}`);
  return doc.obj;
}

describe('deploy/kubernetes manifests', () => {
  const docs = loadDocs();
  const objects = docs.filter((d) => !isKustomization(d));

  it('finds the base and the webhook manifests', () => {
    expect(new Set(objects.map((d) => d.obj.kind))).toEqual(
      new Set(['ConfigMap', 'NetworkPolicy', 'Deployment', 'Service', 'Namespace', 'PodDisruptionBudget', 'MutatingWebhookConfiguration']),
    );
    expect(
      docs
        .filter(isKustomization)
        .map((d) => rel(d.file))
        .sort(),
    ).toEqual(['kustomization.yaml', 'webhook/kustomization.yaml']);
  });

  it('every object passes the schema validators', async () => {
    for (const { label, obj } of objects) {
      await expect(validateWithSchema(obj), label).resolves.toBeUndefined();
    }
  });

  it('no object has a field the API does not know', () => {
    expect(unknownFieldProblems(objects)).toEqual([]);
  });

  it('a misspelled field fails validation, at the top and deep inside a pod template', async () => {
    const typos: Array<[string, (d: Record<string, Loose>) => void]> = [
      ['imagePullPolcy', (d) => (d.spec.template.spec.initContainers[0].imagePullPolcy = 'IfNotPresent')],
      ['readOnlyRootFileSystem', (d) => (d.spec.template.spec.initContainers[0].securityContext.readOnlyRootFileSystem = true)],
      ['replica', (d) => (d.spec.replica = 3)],
      ['initialDelay', (d) => (d.spec.template.spec.containers[0].livenessProbe = { initialDelay: 5, tcpSocket: { port: 1 } })],
    ];
    for (const [field, misspell] of typos) {
      const deployment = structuredClone(find(objects, 'Deployment', 'example-app'));
      misspell(deployment);
      const problems = unknownFieldProblems([{ label: 'typo', obj: deployment as K8sObject }]);
      expect(problems, field).toHaveLength(1);
      expect(problems[0]).toContain(`'"${field}"' does not exist in type`);
    }
    // The schema validators, for their part, catch wrong types and values.
    const webhook = structuredClone(find(objects, 'MutatingWebhookConfiguration', 'oauth-sidecar-injector'));
    webhook.webhooks[0].failurePolicy = 'Sometimes';
    await expect(validateWithSchema(webhook as K8sObject)).rejects.toThrow(/failurePolicy/);
  });

  it('each kustomization lists exactly the manifests beside it', () => {
    for (const k of docs.filter(isKustomization)) {
      const dir = path.dirname(k.file);
      const listed = (k.obj.resources as string[]).map((r) => path.join(dir, r)).sort();
      const present = readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
        .map((f) => path.join(dir, f))
        .sort();
      expect(listed, rel(k.file)).toEqual(present);
    }
  });

  it('the example app runs the same sidecar the injector adds, as a native sidecar, and calls it on loopback', () => {
    const spec = find(objects, 'Deployment', 'example-app').spec.template.spec;
    const [sidecar] = spec.initContainers;
    expect(sidecar).toEqual(sidecarContainer({ image: sidecar.image, secretName: 'oauth-sidecar-credentials', native: true }));
    // The proxy port is for this pod's loopback only: the sidecar declares the admin port (probes) alone.
    expect(sidecar.ports).toEqual([{ name: 'admin', containerPort: 9901, protocol: 'TCP' }]);
    expect(spec.volumes).toEqual(sidecarVolumes('oauth-sidecar-config'));
    const env = spec.containers[0].env as { name: string; value: string }[];
    expect(env.map((e) => e.value)).toEqual(['http://127.0.0.1:8080/collaborate', 'http://127.0.0.1:8080/apiax']);
  });

  it('the ConfigMap holds a proxy.yaml the proxy accepts with generated credentials, with loopback proxy and reachable admin listeners', () => {
    const proxyYaml = find(objects, 'ConfigMap', 'oauth-sidecar-config').data['proxy.yaml'] as string;
    const example = readEnvFile(path.join(root, 'credentials.env.example'));
    // Every ${VAR} the config needs is a key of the Secret's example.
    const refs = [...proxyYaml.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]);
    expect(refs).toEqual(expect.arrayContaining(['REDIS_PASSWORD', 'OAUTH_SIDECAR_ENCRYPTION_KEY']));
    expect(refs.filter((r) => r === undefined || !(r in example))).toEqual([]);

    // The example as it is does not start: its encryption key is a placeholder, refused by name.
    expect(() => parseConfig(proxyYaml, { env: example })).toThrow(ConfigError);
    expect(() => parseConfig(proxyYaml, { env: example })).toThrow(/store\.encryptionKey: .*openssl rand -base64 32/);
    // Nor does a Secret that lacks the password or the key: neither has a default.
    for (const name of ['REDIS_PASSWORD', 'OAUTH_SIDECAR_ENCRYPTION_KEY']) {
      const { [name]: _left, ...without } = example;
      expect(() => parseConfig(proxyYaml, { env: without }), name).toThrow(new RegExp(`environment variable ${name} is not set`));
    }

    const generated = path.join(tempDir('credentials-'), 'credentials.env');
    expect(makeCredentials(generated).status).toBe(0);
    const env = readEnvFile(generated);
    const config = parseConfig(proxyYaml, { env });
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 8080 },
      admin: { host: '0.0.0.0', port: 9901 },
      inboundAuth: { keys: [] },
    });
    expect(config.store.type === 'redis' && config.store.password?.reveal()).toBe(env.REDIS_PASSWORD);
    expect(config.store.type === 'redis' && config.store.encryptionKey?.toString('base64')).toBe(env.OAUTH_SIDECAR_ENCRYPTION_KEY);
  });

  it('Redis takes its password from the Secret, and its NetworkPolicy admits only the pods that run the sidecar', () => {
    const redisPod = find(objects, 'Deployment', 'oauth-sidecar-redis').spec.template;
    const [redis] = redisPod.spec.containers;
    expect(redis.env).toEqual([
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'oauth-sidecar-credentials', key: 'REDIS_PASSWORD' } } },
    ]);
    expect(JSON.stringify([redis.command, redis.args])).not.toContain('--requirepass'); // never on argv (see the test that starts it)

    const policy = find(objects, 'NetworkPolicy', 'oauth-sidecar-redis').spec;
    const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(policy.podSelector.matchLabels, redisPod.metadata.labels)).toBe(true);
    expect(policy.policyTypes).toEqual(['Ingress']);
    expect(policy.ingress).toHaveLength(1);
    const [rule] = policy.ingress;
    expect(rule.ports).toEqual([{ protocol: 'TCP', port: redis.ports[0].containerPort }]);
    expect(rule.from).toHaveLength(1);
    expect(Object.keys(rule.from[0])).toEqual(['podSelector']); // this namespace only
    const selector = rule.from[0].podSelector.matchLabels as Record<string, string>;
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    // The example app's pods (whose sidecar talks to Redis) match; the Redis pod itself and the injector do not.
    expect(matches(selector, find(objects, 'Deployment', 'example-app').spec.template.metadata.labels)).toBe(true);
    expect(matches(selector, redisPod.metadata.labels)).toBe(false);
    expect(matches(selector, find(objects, 'Deployment', 'oauth-sidecar-injector').spec.template.metadata.labels)).toBe(false);

    const kustomization = docs.find((d) => rel(d.file) === 'kustomization.yaml')!.obj as Record<string, Loose>;
    expect(kustomization.secretGenerator).toEqual([{ name: 'oauth-sidecar-credentials', envs: ['credentials.env'] }]);
    expect(readFileSync(path.join(root, '.gitignore'), 'utf8').split('\n')).toContain('credentials.env');
  });

  it('the webhook configuration is v1-only, side-effect free, with a stated failurePolicy, pointed at the Service', () => {
    const config = find(objects, 'MutatingWebhookConfiguration', 'oauth-sidecar-injector');
    const service = find(objects, 'Service', 'oauth-sidecar-injector');
    const [webhook] = config.webhooks;
    expect(webhook).toMatchObject({
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      clientConfig: { service: { name: 'oauth-sidecar-injector', namespace: 'oauth-sidecar-system', path: '/mutate', port: 443 } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    });
    expect(service.metadata.namespace).toBe('oauth-sidecar-system');
    expect(service.spec.ports[0].port).toBe(443);
    const excluded = webhook.namespaceSelector.matchExpressions.find((e: { key: string }) => e.key === 'kubernetes.io/metadata.name');
    expect(excluded.values).toEqual(expect.arrayContaining(['kube-system', 'oauth-sidecar-system']));
    const injector = find(objects, 'Deployment', 'oauth-sidecar-injector').spec.template.spec;
    const args = injector.containers[0].args as string[];
    expect(args.slice(0, 5)).toEqual([
      'inject-webhook',
      '--tls-cert',
      '/etc/oauth-sidecar-injector/tls/tls.crt',
      '--tls-key',
      '/etc/oauth-sidecar-injector/tls/tls.key',
    ]);
    expect(injector.volumes[0].secret.secretName).toBe('oauth-sidecar-injector-tls');
  });
});

describe('deploy/kubernetes/make-credentials.sh', () => {
  it('is valid bash and executable', () => {
    execFileSync('bash', ['-n', path.join(root, 'make-credentials.sh')]);
    expect(statSync(path.join(root, 'make-credentials.sh')).mode & 0o111).not.toBe(0);
  });

  it('writes the example with a new random password and encryption key, readable by its owner only, and never replaces a file', () => {
    const dir = tempDir('make-credentials-');
    const [first, second] = [path.join(dir, 'a.env'), path.join(dir, 'b.env')];
    expect(makeCredentials(first).status).toBe(0);
    expect(makeCredentials(second).status).toBe(0);
    expect(statSync(first).mode & 0o777).toBe(0o600);
    const a = readEnvFile(first);
    const b = readEnvFile(second);
    expect(a.REDIS_PASSWORD).toMatch(/^[0-9a-f]{64}$/);
    expect(a.OAUTH_SIDECAR_ENCRYPTION_KEY).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect([b.REDIS_PASSWORD, b.OAUTH_SIDECAR_ENCRYPTION_KEY]).not.toEqual(
      expect.arrayContaining([a.REDIS_PASSWORD, a.OAUTH_SIDECAR_ENCRYPTION_KEY]),
    );
    // Everything else is the example, line for line (its comments say what each key is for).
    const example = readFileSync(path.join(root, 'credentials.env.example'), 'utf8').split('\n');
    const written = readFileSync(first, 'utf8').split('\n');
    expect(written.filter((line, i) => line !== example[i]).map((line) => line.split('=')[0])).toEqual([
      'REDIS_PASSWORD',
      'OAUTH_SIDECAR_ENCRYPTION_KEY',
    ]);

    const before = readFileSync(first, 'utf8');
    const again = makeCredentials(first);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already exists; not replacing it');
    expect(readFileSync(first, 'utf8')).toBe(before);
    expect(`${again.stdout}${again.stderr}`).not.toContain(a.REDIS_PASSWORD);
  });
});

describe('the example Redis container', () => {
  const redis = () => {
    const docs = parseAllDocuments(readFileSync(path.join(root, 'redis.yaml'), 'utf8')).map((doc) => doc.toJS() as Record<string, Loose>);
    return docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
  };

  /**
   * The container's own start command, on a loopback port and a temp directory instead of 6379 and /data.
   * The port is given up front, so a start that finds it taken ("Address already in use") is repeated on another.
   */
  async function startAsInManifest(password: string | undefined) {
    const [shell, flag, script] = redis().command as string[];
    expect([shell, flag]).toEqual(['sh', '-c']);
    return retryOnAddressInUse('the example Redis container', async (port) => {
      const dir = tempDir('redis-manifest-');
      const local = script!.replace('--dir /data', `--dir ${dir} --port ${port} --bind 127.0.0.1`);
      expect(local).not.toBe(script);
      const child = spawn('sh', ['-c', local], {
        env: { PATH: process.env.PATH, ...(password === undefined ? {} : { REDISCLI_AUTH: password }) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      onTestFinished(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      });
      // redis-server logs to stdout: it has bound its port once it is ready, and says why when it could not.
      const ready = new Promise<void>((resolve) =>
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('Ready to accept connections')) resolve();
        }),
      );
      const closed = new Promise<'closed'>((resolve) => child.on('close', () => resolve('closed')));
      if ((await Promise.race([ready, closed])) === 'closed' && stdout.includes('Address already in use')) return ADDRESS_IN_USE;
      return { child, port, exited, stderr: () => stderr };
    });
  }

  it('refuses to start without a password, or with the placeholder of credentials.env.example', async () => {
    const placeholder = readEnvFile(path.join(root, 'credentials.env.example')).REDIS_PASSWORD;
    for (const password of [undefined, '', placeholder]) {
      const started = await startAsInManifest(password);
      expect(await started.exited, String(password)).toBe(1);
      expect(started.stderr()).toContain('REDIS_PASSWORD is not set in credentials.env; make one with: openssl rand -hex 32');
    }
  });

  it('asks for the password from its environment, which is not on its command line, and the probe and the proxy config get in with it', async () => {
    const dir = tempDir('credentials-');
    expect(makeCredentials(path.join(dir, 'credentials.env')).status).toBe(0);
    const env = readEnvFile(path.join(dir, 'credentials.env'));
    const started = await startAsInManifest(env.REDIS_PASSWORD);
    const deadline = Date.now() + 10_000;
    while ((await redisCli(started.port, ['PING'], env.REDIS_PASSWORD).catch(() => '')) !== 'PONG') {
      expect(Date.now(), started.stderr()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(await redisCli(started.port, ['PING'])).toMatch(/NOAUTH/);
    // exec: the shell became redis-server, whose argv holds no password.
    if (existsSync(`/proc/${started.child.pid}/cmdline`)) {
      const argv = readFileSync(`/proc/${started.child.pid}/cmdline`, 'utf8');
      expect(argv).toContain('redis-server');
      expect(argv).not.toContain(env.REDIS_PASSWORD);
    }

    // The readiness probe, with the container's environment: ready only with the right password.
    const probe = (redis().readinessProbe.exec.command as string[]).map((part) =>
      part.replace('redis-cli ping', `redis-cli -p ${started.port} ping`),
    );
    expect(probe.join(' ')).toContain(`-p ${started.port}`);
    const run = (password: string) =>
      spawnSync(probe[0]!, probe.slice(1), { env: { PATH: process.env.PATH, REDISCLI_AUTH: password }, encoding: 'utf8' }).status;
    expect(run(env.REDIS_PASSWORD!)).toBe(0);
    expect(run('wrong')).not.toBe(0);

    // The sidecar's store settings from the ConfigMap, pointed at this Redis, write and read an encrypted record.
    const configMap = parseAllDocuments(readFileSync(path.join(root, 'configmap.yaml'), 'utf8'))[0]!.toJS() as Record<string, Loose>;
    const config = parseConfig(configMap.data['proxy.yaml'], { env });
    if (config.store.type !== 'redis') throw new Error('the example uses the Redis store');
    const store = await createRedisStore({
      url: `redis://127.0.0.1:${started.port}/0`,
      password: config.store.password?.reveal(),
      encryptionKey: config.store.encryptionKey,
    });
    try {
      const record = {
        generation: 1,
        accessToken: 'a',
        accessTokenExpiresAt: 1,
        refreshToken: 'r',
        obtainedAt: 1,
        source: 'seed' as const,
        writer: 'test',
      };
      expect(await store.compareAndSet('collaborate', 0, record)).toBe('applied');
      expect(await store.read('collaborate')).toEqual(record);
    } finally {
      await store.close();
    }
  });
});

describe('kubectl kustomize deploy/kubernetes', () => {
  const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((file) => existsSync(file));

  it.skipIf(kubectl === undefined)('stops without credentials.env, and renders with the one make-credentials.sh writes', () => {
    const dir = tempDir('kustomize-');
    cpSync(root, dir, { recursive: true, filter: (source) => !source.endsWith('credentials.env') });
    const without = spawnSync(kubectl!, ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
    expect(without.status).not.toBe(0);
    expect(without.stderr).toContain('credentials.env');

    expect(makeCredentials(path.join(dir, 'credentials.env')).status).toBe(0);
    const rendered = spawnSync(kubectl!, ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
    expect(rendered.stderr).toBe('');
    expect(rendered.status).toBe(0);
    const objects = parseAllDocuments(rendered.stdout).map((doc) => doc.toJS() as Record<string, Loose>);
    const secret = objects.find((o) => o.kind === 'Secret')!;
    // The generated name carries a content hash; every reference to it is rewritten to match.
    expect(secret.metadata.name).toMatch(/^oauth-sidecar-credentials-[a-z0-9]+$/);
    const env = readEnvFile(path.join(dir, 'credentials.env'));
    expect(Object.keys(secret.data).sort()).toEqual(Object.keys(env).sort());
    expect(Buffer.from(secret.data.REDIS_PASSWORD, 'base64').toString()).toBe(env.REDIS_PASSWORD);
    const deployment = (name: string) => objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!.spec.template.spec;
    expect(deployment('example-app').initContainers[0].envFrom).toEqual([{ secretRef: { name: secret.metadata.name } }]);
    expect(deployment('oauth-sidecar-redis').containers[0].env[0].valueFrom.secretKeyRef).toEqual({
      name: secret.metadata.name,
      key: 'REDIS_PASSWORD',
    });
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy', 'Secret', 'Service']);
    writeFileSync(path.join(dir, 'rendered.yaml'), rendered.stdout); // for a look when it fails
  });
});

describe('deploy/kubernetes/webhook/make-cert.sh', () => {
  const script = path.join(root, 'webhook/make-cert.sh');

  it('is valid bash', () => {
    execFileSync('bash', ['-n', script]);
  });

  it('makes a CA and a serving certificate for the Service DNS name and prints the caBundle', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'make-cert-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, 'tls');
    const stdout = execFileSync('bash', [script, out], { encoding: 'utf8' });
    const ca = readFileSync(path.join(out, 'ca.crt'), 'utf8');
    expect(stdout).toContain(Buffer.from(ca).toString('base64'));
    const sans = execFileSync('/usr/bin/openssl', ['x509', '-in', path.join(out, 'tls.crt'), '-noout', '-ext', 'subjectAltName'], {
      encoding: 'utf8',
    });
    expect(sans).toContain('DNS:oauth-sidecar-injector.oauth-sidecar-system.svc');
    execFileSync('/usr/bin/openssl', ['verify', '-CAfile', path.join(out, 'ca.crt'), path.join(out, 'tls.crt')]);
  });
});
