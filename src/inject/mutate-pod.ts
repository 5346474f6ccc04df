/**
 * mutatePod: a pod and the injector's settings in, the JSON Patch (RFC 6902) that adds the sidecar out.
 * Pure: no I/O, no clock. Every path is built for the pod as it is: an absent array or object is added
 * whole, a present one is appended to, so the patch applies to exactly the pod it was computed for.
 */
import { annotations, readInjectAnnotations } from './inject-annotations.js';
import { pointer, type AddOperation } from './json-patch.js';
import { configVolumeName, dataVolumeName, proxyPort, sidecarContainer, sidecarName, sidecarVolumes } from './sidecar-container.js';

export interface MutateOptions {
  readonly image: string;
}

export type MutateResult =
  /** Allowed unchanged; `reason` is for the log (not-requested, already-injected). */
  | { readonly kind: 'unchanged'; readonly reason: 'not-requested' | 'already-injected' }
  /** Refused: the pod asked for injection but the request cannot be met. */
  | { readonly kind: 'denied'; readonly message: string }
  | { readonly kind: 'patched'; readonly ops: readonly AddOperation[]; readonly native: boolean };

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listOf(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

function namesIn(list: unknown[] | undefined): string[] {
  return (list ?? []).flatMap((item) => (isRecord(item) && typeof item.name === 'string' ? [item.name] : []));
}

/** Adds `items` to the array at `path`: the whole array when absent, else each appended with `/-`. */
function appendAll(path: string, present: boolean, items: readonly unknown[]): AddOperation[] {
  if (!present) return [{ op: 'add', path, value: [...items] }];
  return items.map((value) => ({ op: 'add', path: `${path}/-`, value }));
}

export function mutatePod(pod: unknown, options: MutateOptions): MutateResult {
  if (!isRecord(pod)) return { kind: 'denied', message: 'request.object is not a Pod' };
  const metadata = isRecord(pod.metadata) ? pod.metadata : {};
  const podAnnotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const read = readInjectAnnotations(podAnnotations);
  if (read.kind === 'not-requested') return { kind: 'unchanged', reason: 'not-requested' };
  if (read.kind === 'invalid') return { kind: 'denied', message: `oauth-sidecar injection: ${read.problems.join('; ')}` };
  const settings = read.settings;

  const spec = pod.spec;
  if (!isRecord(spec)) return { kind: 'denied', message: 'oauth-sidecar injection: the pod has no spec' };
  const containers = listOf(spec.containers);
  if (!containers || containers.length === 0) {
    return { kind: 'denied', message: 'oauth-sidecar injection: the pod has no containers' };
  }
  const initContainers = listOf(spec.initContainers);
  if (namesIn(containers).includes(sidecarName) || namesIn(initContainers).includes(sidecarName)) {
    return { kind: 'unchanged', reason: 'already-injected' };
  }
  const volumes = listOf(spec.volumes);
  const clash = namesIn(volumes).filter((n) => n === configVolumeName || n === dataVolumeName);
  if (clash.length > 0) {
    return { kind: 'denied', message: `oauth-sidecar injection: the pod already has a volume named ${clash.join(', ')}` };
  }

  const ops: AddOperation[] = [];
  // App containers first: their indexes do not move when the sidecar is appended after them.
  containers.forEach((container, index) => {
    if (!isRecord(container) || settings.env.length === 0) return;
    const env = listOf(container.env);
    const taken = new Set(namesIn(env));
    // A value the pod sets itself wins: the operator may point one variable somewhere else on purpose.
    const vars = settings.env
      .filter((e) => !taken.has(e.name))
      .map((e) => ({ name: e.name, value: `http://127.0.0.1:${proxyPort}/${e.upstream}` }));
    if (vars.length > 0) ops.push(...appendAll(pointer('spec', 'containers', index, 'env'), env !== undefined, vars));
  });

  const sidecar = sidecarContainer({ image: options.image, secretName: settings.secretName, native: settings.native });
  if (settings.native) {
    // First among the init containers, so init containers after it can already use the proxy.
    ops.push(
      initContainers === undefined
        ? { op: 'add', path: pointer('spec', 'initContainers'), value: [sidecar] }
        : { op: 'add', path: pointer('spec', 'initContainers', 0), value: sidecar },
    );
  } else {
    ops.push({ op: 'add', path: pointer('spec', 'containers', '-'), value: sidecar });
  }
  ops.push(...appendAll(pointer('spec', 'volumes'), volumes !== undefined, sidecarVolumes(settings.configMapName)));
  // The inject annotation exists, so metadata.annotations does too; the key needs RFC 6901 escaping.
  ops.push({ op: 'add', path: pointer('metadata', 'annotations', annotations.status), value: 'injected' });
  return { kind: 'patched', ops, native: settings.native };
}
