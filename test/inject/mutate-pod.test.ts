import { describe, expect, it } from 'vitest';
import { escapePointerToken, pointer } from '../../src/inject/json-patch.js';
import { mutatePod, type MutateResult } from '../../src/inject/mutate-pod.js';
import { barePod, busyPod, image, injectAnnotations } from './fixtures.js';
import { applyPatch } from './helpers/json-patch.js';
import { unknownFieldProblems, validateWithSchema, type K8sObject } from './helpers/k8s-validate.js';

type Container = { name: string; restartPolicy?: string; env?: { name: string; value: string }[]; envFrom?: unknown[]; image?: string };
type PodShape = K8sObject & {
  metadata: { annotations: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: { name: string }[] };
};

function patched(result: MutateResult) {
  if (result.kind !== 'patched') throw new Error(`expected a patch, got ${JSON.stringify(result)}`);
  return result.ops;
}

async function expectValidPod(pod: K8sObject) {
  await validateWithSchema(pod);
  expect(unknownFieldProblems([{ label: 'patched pod', obj: pod }])).toEqual([]);
}

describe('mutatePod', () => {
  it('adds a native sidecar to a pod with no init containers, volumes or env: whole arrays are added', async () => {
    const pod = barePod(injectAnnotations);
    const ops = patched(mutatePod(pod, { image }));
    expect(ops.map((o) => o.path)).toEqual([
      '/spec/containers/0/env',
      '/spec/containers/1/env',
      '/spec/initContainers',
      '/spec/volumes',
      '/metadata/annotations/oauth-sidecar.io~1status',
    ]);

    const out = applyPatch(pod, ops) as PodShape;
    const sidecar = out.spec.initContainers?.[0] as Record<string, unknown>;
    expect(sidecar).toMatchObject({
      name: 'oauth-sidecar',
      image,
      restartPolicy: 'Always',
      args: ['serve', '--config', '/etc/oauth-sidecar/proxy.yaml'],
      envFrom: [{ secretRef: { name: 'legacy-app-credentials' } }],
      volumeMounts: [
        { name: 'oauth-sidecar-config', mountPath: '/etc/oauth-sidecar', readOnly: true },
        { name: 'oauth-sidecar-data', mountPath: '/var/lib/oauth-sidecar' },
      ],
      // The proxy is for this pod's app containers on loopback: only the admin port (probes) is declared.
      ports: [{ name: 'admin', containerPort: 9901, protocol: 'TCP' }],
      startupProbe: { httpGet: { path: '/healthz', port: 'admin' } },
      livenessProbe: { httpGet: { path: '/healthz', port: 'admin' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'admin' } },
      securityContext: {
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
    });
    expect(out.spec.volumes).toEqual([
      { name: 'oauth-sidecar-config', configMap: { name: 'legacy-app-proxy' } },
      { name: 'oauth-sidecar-data', emptyDir: { sizeLimit: '64Mi' } },
    ]);
    for (const container of out.spec.containers) {
      expect(container.env).toEqual([
        { name: 'COLLABORATE_URL', value: 'http://127.0.0.1:8080/collaborate' },
        { name: 'APIAX_URL', value: 'http://127.0.0.1:8080/apiax' },
      ]);
    }
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'worker']);
    expect(out.metadata.annotations['oauth-sidecar.io/status']).toBe('injected');
    await expectValidPod(out);
  });

  it('appends to arrays the pod already has, keeps its own env values, and puts the sidecar first among init containers', async () => {
    const pod = busyPod(injectAnnotations);
    const ops = patched(mutatePod(pod, { image }));
    expect(ops.map((o) => o.path)).toEqual([
      '/spec/containers/0/env/-',
      '/spec/initContainers/0',
      '/spec/volumes/-',
      '/spec/volumes/-',
      '/metadata/annotations/oauth-sidecar.io~1status',
    ]);
    const out = applyPatch(pod, ops) as PodShape;
    expect(out.spec.initContainers?.map((c) => c.name)).toEqual(['oauth-sidecar', 'migrate']);
    expect(out.spec.volumes?.map((v) => v.name)).toEqual(['cache', 'oauth-sidecar-config', 'oauth-sidecar-data']);
    expect(out.spec.containers[0]?.env).toEqual([
      { name: 'LOG_LEVEL', value: 'debug' },
      { name: 'APIAX_URL', value: 'http://elsewhere.example/apiax' },
      { name: 'COLLABORATE_URL', value: 'http://127.0.0.1:8080/collaborate' },
    ]);
    await expectValidPod(out);
  });

  it('adds a classic container (no restartPolicy) when oauth-sidecar.io/native is "false"', async () => {
    const pod = busyPod({ ...injectAnnotations, 'oauth-sidecar.io/native': 'false' });
    const ops = patched(mutatePod(pod, { image }));
    expect(ops.some((o) => o.path.startsWith('/spec/initContainers'))).toBe(false);
    const out = applyPatch(pod, ops) as PodShape;
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'oauth-sidecar']);
    expect(out.spec.containers[1]).not.toHaveProperty('restartPolicy');
    expect(out.spec.initContainers?.map((c) => c.name)).toEqual(['migrate']);
    await expectValidPod(out);
  });

  it('leaves out envFrom and env when no secret or env annotation is given', async () => {
    const pod = barePod({ 'oauth-sidecar.io/inject': 'true', 'oauth-sidecar.io/config': 'proxy' });
    const out = applyPatch(pod, patched(mutatePod(pod, { image }))) as PodShape;
    expect(out.spec.initContainers?.[0]).not.toHaveProperty('envFrom');
    expect(out.spec.containers[0]).not.toHaveProperty('env');
    await expectValidPod(out);
  });

  it('is idempotent: a pod that has the sidecar (as injected, or written by hand) is left alone', () => {
    const pod = barePod(injectAnnotations);
    const once = applyPatch(pod, patched(mutatePod(pod, { image })));
    expect(mutatePod(once, { image })).toEqual({ kind: 'unchanged', reason: 'already-injected' });
    const byHand = busyPod(injectAnnotations) as PodShape;
    byHand.spec.containers.push({ name: 'oauth-sidecar', image });
    expect(mutatePod(byHand, { image })).toEqual({ kind: 'unchanged', reason: 'already-injected' });
  });

  it('passes pods that do not ask for injection', () => {
    for (const value of [undefined, 'false', 'True', '1', '']) {
      const annotations: Record<string, string> = value === undefined ? {} : { 'oauth-sidecar.io/inject': value };
      expect(mutatePod(barePod(annotations), { image })).toEqual({ kind: 'unchanged', reason: 'not-requested' });
    }
    const noMetadata = { apiVersion: 'v1', kind: 'Pod', spec: { containers: [{ name: 'a', image: 'a' }] } };
    expect(mutatePod(noMetadata, { image })).toEqual({ kind: 'unchanged', reason: 'not-requested' });
  });

  it('refuses a pod that asks for injection with unusable annotations, listing every problem', () => {
    const result = mutatePod(
      barePod({
        'oauth-sidecar.io/inject': 'true',
        'oauth-sidecar.io/native': 'yes',
        'oauth-sidecar.io/secret': 'Not_A_Name',
        'oauth-sidecar.io/env': 'COLLABORATE_URL=collaborate,9BAD=apiax,NOVALUE,COLLABORATE_URL=v3',
      }),
      { image },
    );
    expect(result.kind).toBe('denied');
    const message = (result as { message: string }).message;
    expect(message).toContain('oauth-sidecar.io/native must be "true" or "false"');
    expect(message).toContain('oauth-sidecar.io/config must name the ConfigMap');
    expect(message).toContain('oauth-sidecar.io/secret is not a valid Secret name');
    expect(message).toContain('"9BAD=apiax" does not start with a valid variable name');
    expect(message).toContain('"NOVALUE" needs an upstream name');
    expect(message).toContain('COLLABORATE_URL is given twice');
    expect(mutatePod(barePod({ ...injectAnnotations, 'oauth-sidecar.io/env': ' , ' }), { image })).toMatchObject({ kind: 'denied' });
  });

  it('refuses, without throwing, objects that are not pods it can change', () => {
    const annotations = { metadata: { annotations: injectAnnotations } };
    for (const object of [
      null,
      'pod',
      42,
      [],
      { ...annotations },
      { ...annotations, spec: {} },
      { ...annotations, spec: { containers: 'app' } },
    ]) {
      expect(mutatePod(object, { image }).kind).toBe('denied');
    }
    const clash = busyPod(injectAnnotations) as PodShape;
    clash.spec.volumes?.push({ name: 'oauth-sidecar-data' });
    expect(mutatePod(clash, { image })).toEqual({
      kind: 'denied',
      message: 'oauth-sidecar injection: the pod already has a volume named oauth-sidecar-data',
    });
  });
});

describe('JSON Pointer and the test patch applier', () => {
  it('escapes "~" and "/" in reference tokens (RFC 6901 section 3)', () => {
    expect(escapePointerToken('a~b/c')).toBe('a~0b~1c');
    expect(escapePointerToken('~1')).toBe('~01');
    expect(pointer('metadata', 'annotations', 'example.com/x~y')).toBe('/metadata/annotations/example.com~1x~0y');
    const doc = applyPatch({ metadata: { annotations: {} } }, [
      { op: 'add', path: pointer('metadata', 'annotations', 'example.com/x~y'), value: 'v' },
    ]);
    expect(doc).toEqual({ metadata: { annotations: { 'example.com/x~y': 'v' } } });
  });

  it('rejects appends to arrays that do not exist, as the API server does', () => {
    const pod = barePod({});
    expect(() => applyPatch(pod, [{ op: 'add', path: '/spec/initContainers/-', value: {} }])).toThrow('path not found');
    expect(() => applyPatch(pod, [{ op: 'add', path: '/spec/containers/5', value: {} }])).toThrow('out of range');
  });
});
