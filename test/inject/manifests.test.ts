/**
 * Every manifest in deploy/kubernetes is checked against the Kubernetes OpenAPI schemas, unknown fields
 * included, and the hand-written example sidecar is kept equal to the one the injector adds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
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
      new Set(['ConfigMap', 'Secret', 'Deployment', 'Service', 'Namespace', 'PodDisruptionBudget', 'MutatingWebhookConfiguration']),
    );
    expect(docs.filter(isKustomization).map((d) => rel(d.file)).sort()).toEqual(['kustomization.yaml', 'webhook/kustomization.yaml']);
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
    expect(spec.volumes).toEqual(sidecarVolumes('oauth-sidecar-config'));
    const env = spec.containers[0].env as { name: string; value: string }[];
    expect(env.map((e) => e.value)).toEqual(['http://127.0.0.1:8080/collaborate', 'http://127.0.0.1:8080/apiax']);
  });

  it('the ConfigMap holds a proxy.yaml the proxy accepts, with loopback proxy and reachable admin listeners', () => {
    const configMap = find(objects, 'ConfigMap', 'oauth-sidecar-config');
    const secret = find(objects, 'Secret', 'oauth-sidecar-credentials');
    const config = parseConfig(configMap.data['proxy.yaml'], { env: secret.stringData });
    expect(config).toMatchObject({ listen: { host: '127.0.0.1', port: 8080 }, admin: { host: '0.0.0.0', port: 9901 } });
    // Every ${VAR} the config needs is a key of the example Secret.
    const refs = [...(configMap.data['proxy.yaml'] as string).matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]);
    expect(refs.filter((r) => r === undefined || !(r in secret.stringData))).toEqual([]);
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
    expect(args.slice(0, 5)).toEqual(['inject-webhook', '--tls-cert', '/etc/oauth-sidecar-injector/tls/tls.crt', '--tls-key', '/etc/oauth-sidecar-injector/tls/tls.key']);
    expect(injector.volumes[0].secret.secretName).toBe('oauth-sidecar-injector-tls');
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
    const sans = execFileSync('/usr/bin/openssl', ['x509', '-in', path.join(out, 'tls.crt'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
    expect(sans).toContain('DNS:oauth-sidecar-injector.oauth-sidecar-system.svc');
    execFileSync('/usr/bin/openssl', ['verify', '-CAfile', path.join(out, 'ca.crt'), path.join(out, 'tls.crt')]);
  });
});
