/** The pod annotations that ask for injection, checked into one settings object (every problem listed). */

export const annotationPrefix = 'oauth-sidecar.io/';
export const annotations = {
  inject: `${annotationPrefix}inject`,
  native: `${annotationPrefix}native`,
  config: `${annotationPrefix}config`,
  secret: `${annotationPrefix}secret`,
  env: `${annotationPrefix}env`,
  /** Set by the injector on the pods it changed, for `kubectl get pods -l`-free auditing. */
  status: `${annotationPrefix}status`,
} as const;

export interface InjectSettings {
  readonly native: boolean;
  readonly configMapName: string;
  readonly secretName: string | undefined;
  /** Env var name → upstream route (`COLLABORATE_URL` → `collaborate`). */
  readonly env: ReadonlyArray<{ readonly name: string; readonly upstream: string }>;
}

export type ReadAnnotations =
  | { readonly kind: 'not-requested' }
  | { readonly kind: 'invalid'; readonly problems: readonly string[] }
  | { readonly kind: 'inject'; readonly settings: InjectSettings };

// RFC 1123 DNS subdomain: what Kubernetes accepts as a ConfigMap or Secret name.
const objectName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
// One path segment, as proxy.yaml routes an upstream at /<name>.
const upstreamName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function readInjectAnnotations(values: Readonly<Record<string, unknown>>): ReadAnnotations {
  if (values[annotations.inject] !== 'true') return { kind: 'not-requested' };
  const problems: string[] = [];

  const native = values[annotations.native];
  if (native !== undefined && native !== 'true' && native !== 'false') {
    problems.push(`${annotations.native} must be "true" or "false"`);
  }
  const configMapName = values[annotations.config];
  if (typeof configMapName !== 'string' || configMapName === '') {
    problems.push(`${annotations.config} must name the ConfigMap that holds proxy.yaml`);
  } else if (configMapName.length > 253 || !objectName.test(configMapName)) {
    problems.push(`${annotations.config} is not a valid ConfigMap name`);
  }
  const secretName = values[annotations.secret];
  if (secretName !== undefined && (typeof secretName !== 'string' || secretName.length > 253 || !objectName.test(secretName))) {
    problems.push(`${annotations.secret} is not a valid Secret name`);
  }
  const env: { name: string; upstream: string }[] = [];
  const envValue = values[annotations.env];
  if (envValue !== undefined) {
    const entries =
      typeof envValue === 'string'
        ? envValue
            .split(',')
            .map((e) => e.trim())
            .filter((e) => e !== '')
        : [];
    if (entries.length === 0) problems.push(`${annotations.env} must look like NAME=upstream[,NAME=upstream]`);
    for (const entry of entries) {
      const eq = entry.indexOf('=');
      const name = eq < 0 ? entry : entry.slice(0, eq);
      const upstream = eq < 0 ? '' : entry.slice(eq + 1);
      // The entry is the operator's own text, but cut it short: a message must stay readable.
      const shown = JSON.stringify(entry.slice(0, 64));
      if (!envName.test(name)) problems.push(`${annotations.env}: ${shown} does not start with a valid variable name`);
      else if (!upstreamName.test(upstream)) problems.push(`${annotations.env}: ${shown} needs an upstream name after "="`);
      else if (env.some((e) => e.name === name)) problems.push(`${annotations.env}: ${name} is given twice`);
      else env.push({ name, upstream });
    }
  }
  if (problems.length > 0) return { kind: 'invalid', problems };
  return {
    kind: 'inject',
    settings: {
      native: native !== 'false',
      configMapName: configMapName as string,
      secretName: typeof secretName === 'string' ? secretName : undefined,
      env,
    },
  };
}
