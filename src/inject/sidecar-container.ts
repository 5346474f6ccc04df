/**
 * The sidecar as the injector adds it. deploy/kubernetes/app-deployment.yaml holds the same container
 * written out by hand; test/inject/manifests.test.ts checks that the two agree.
 */

export const sidecarName = 'oauth-sidecar';
export const configVolumeName = 'oauth-sidecar-config';
export const dataVolumeName = 'oauth-sidecar-data';
export const configDir = '/etc/oauth-sidecar';
export const dataDir = '/var/lib/oauth-sidecar';
/** Where the app containers reach the proxy: http://127.0.0.1:8080 (shared network namespace). */
export const proxyPort = 8080;
export const adminPort = 9901;
/** The image's user (see Dockerfile); runAsUser makes runAsNonRoot checkable without reading the image. */
export const sidecarUid = 10001;

export interface SidecarOptions {
  readonly image: string;
  /** Secret whose keys become environment variables (the ${VAR} references in proxy.yaml). */
  readonly secretName: string | undefined;
  /** Native sidecar: an init container with restartPolicy Always (Kubernetes 1.29+), so Jobs complete. */
  readonly native: boolean;
}

export function sidecarContainer(options: SidecarOptions): Record<string, unknown> {
  return {
    name: sidecarName,
    image: options.image,
    ...(options.native ? { restartPolicy: 'Always' } : {}),
    args: ['serve', '--config', `${configDir}/proxy.yaml`],
    // Only the admin port (probes) is declared. The proxy port is meant for the app containers of this pod,
    // on loopback (listen: 127.0.0.1:8080 in the pod's proxy.yaml): declaring it would invite a Service or
    // another pod to it, and a proxy that answered there would spend the credentials for anyone.
    ports: [{ name: 'admin', containerPort: adminPort, protocol: 'TCP' }],
    ...(options.secretName ? { envFrom: [{ secretRef: { name: options.secretName } }] } : {}),
    volumeMounts: [
      { name: configVolumeName, mountPath: configDir, readOnly: true },
      { name: dataVolumeName, mountPath: dataDir },
    ],
    // The startup probe of a native sidecar gates the app containers: they start once /healthz answers.
    startupProbe: { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 1, failureThreshold: 30 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    // /readyz is 503 while an upstream has no usable token: the pod leaves the Service endpoints until it has one.
    readinessProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
    resources: {
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '500m', memory: '256Mi' },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: sidecarUid,
      runAsGroup: sidecarUid,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

export function sidecarVolumes(configMapName: string): Record<string, unknown>[] {
  return [
    { name: configVolumeName, configMap: { name: configMapName } },
    { name: dataVolumeName, emptyDir: { sizeLimit: '64Mi' } },
  ];
}
