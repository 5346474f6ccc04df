/** AdmissionReview fixtures: pods as kubectl/controllers send them, wrapped as the API server does. */
import type { K8sObject } from './helpers/k8s-validate.js';

export const image = 'registry.example.com/oauth-sidecar:0.1.0';

export function admissionReview(object: unknown, options: { uid?: string; kind?: { group: string; version: string; kind: string } } = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: options.kind ?? { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: options.kind ?? { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team-a',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

/** A pod from a ReplicaSet: generateName, no name yet; no env, no volumes, no init containers. */
export function barePod(annotations: Record<string, string>): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'legacy-app-7d9f8-', namespace: 'team-a', labels: { app: 'legacy-app' }, annotations },
    spec: {
      containers: [
        { name: 'app', image: 'legacy-app:1.2', ports: [{ containerPort: 3000 }] },
        { name: 'worker', image: 'legacy-app:1.2', args: ['worker'] },
      ],
    },
  };
}

/** A pod that already has env, volumes and an init container of its own. */
export function busyPod(annotations: Record<string, string>): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'legacy-app-0', namespace: 'team-a', annotations },
    spec: {
      initContainers: [{ name: 'migrate', image: 'legacy-app:1.2', args: ['migrate'] }],
      containers: [
        {
          name: 'app',
          image: 'legacy-app:1.2',
          env: [
            { name: 'LOG_LEVEL', value: 'debug' },
            // The pod's own value must survive injection.
            { name: 'APIAX_URL', value: 'http://elsewhere.example/apiax' },
          ],
          volumeMounts: [{ name: 'cache', mountPath: '/cache' }],
        },
      ],
      volumes: [{ name: 'cache', emptyDir: {} }],
    },
  };
}

export const injectAnnotations = {
  'oauth-sidecar.io/inject': 'true',
  'oauth-sidecar.io/config': 'legacy-app-proxy',
  'oauth-sidecar.io/secret': 'legacy-app-credentials',
  'oauth-sidecar.io/env': 'COLLABORATE_URL=collaborate,APIAX_URL=apiax',
};
