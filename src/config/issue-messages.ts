/**
 * Config problems in the operator's terms: a missing key says "required" (not the type it should have
 * had), an unknown key gets a "did you mean" when a known key is one or two edits away, and a YAML
 * syntax error names its line and column without the dangling snippet header.
 */
import type { z } from 'zod';
import type { YAMLError } from 'yaml';

export function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, schema: z.ZodType): string[] {
  return issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      return `${path}: ${issue.keys.map((key) => `unknown key ${key}${didYouMean(key, known)}`).join(', ')}`;
    }
    // A bad record key (upstream name): zod's own message is "Invalid key in record"; say why instead.
    if (issue.code === 'invalid_key') return `${path}: ${issue.issues.map((inner) => inner.message).join('; ')}`;
    if (issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined) return `${path}: required`;
    return `${path}: ${issue.message}`;
  });
}

/** "file:4:1: Implicit keys need to be on a single line" rather than "… at line 4, column 1:" with nothing after it. */
export function describeYamlError(source: string, error: YAMLError): string {
  const message = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.message;
  const position = error.linePos?.[0];
  return position ? `${source}:${position.line}:${position.col}: ${message}` : `${source}: ${message}`;
}

function didYouMean(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean ${best}?)` : '';
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The keys an object schema at `path` accepts (through defaults, optionals, records and unions). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let nodes = [schema];
  for (const segment of path) nodes = nodes.flatMap((node) => childrenOf(unwrap(node), segment));
  return [...new Set(nodes.flatMap((node) => Object.keys(shapeOf(unwrap(node)))))];
}

interface Def {
  readonly type?: string;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly shape?: Record<string, z.ZodType>;
}

function defOf(node: z.ZodType): Def {
  return (node as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(node: z.ZodType): z.ZodType {
  let current = node;
  for (let depth = 0; depth < 10; depth += 1) {
    const def = defOf(current);
    const inner = def.innerType ?? def.in;
    if (!inner) return current;
    current = inner;
  }
  return current;
}

function childrenOf(node: z.ZodType, segment: PropertyKey): z.ZodType[] {
  const def = defOf(node);
  if (def.type === 'union') return (def.options ?? []).flatMap((option) => childrenOf(unwrap(option), segment));
  if (def.type === 'record') return def.valueType ? [def.valueType] : [];
  const child = shapeOf(node)[String(segment)];
  return child ? [child] : [];
}

function shapeOf(node: z.ZodType): Record<string, z.ZodType> {
  const def = defOf(node);
  if (def.type === 'union') return Object.assign({}, ...(def.options ?? []).map((option) => shapeOf(unwrap(option))));
  return def.type === 'object' ? (def.shape ?? {}) : {};
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}
