/**
 * A small RFC 6902 applier for tests (add, remove, replace, test). Strict on purpose: adding under a
 * parent that does not exist, or past the end of an array, throws, as it does in the API server, so a
 * patch computed for the wrong shape of pod fails the test instead of being quietly repaired.
 */

type Json = unknown;

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`JSON Pointer must start with "/": ${path}`);
  // RFC 6901 section 4: ~1 first, then ~0.
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`bad array index "${token}"`);
  const index = Number(token);
  if (index > length || (!forAdd && index === length)) throw new Error(`array index ${index} out of range`);
  return index;
}

function parentOf(doc: Json, tokens: string[], path: string): { parent: Json; last: string } {
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(token, node.length, false)];
    else if (typeof node === 'object' && node !== null && Object.hasOwn(node, token)) node = (node as Record<string, Json>)[token];
    else throw new Error(`path not found: ${path}`);
  }
  return { parent: node, last: tokens[tokens.length - 1] as string };
}

export interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

export function applyPatch<T>(document: T, ops: readonly PatchOperation[]): T {
  let doc: Json = structuredClone(document);
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') doc = structuredClone(op.value);
      else throw new Error(`unsupported op on the root: ${op.op}`);
      continue;
    }
    const { parent, last } = parentOf(doc, tokens, op.path);
    if (Array.isArray(parent)) {
      if (op.op === 'add') parent.splice(arrayIndex(last, parent.length, true), 0, structuredClone(op.value));
      else if (op.op === 'remove') parent.splice(arrayIndex(last, parent.length, false), 1);
      else if (op.op === 'replace') parent[arrayIndex(last, parent.length, false)] = structuredClone(op.value);
      else if (op.op === 'test') {
        if (JSON.stringify(parent[arrayIndex(last, parent.length, false)]) !== JSON.stringify(op.value))
          throw new Error(`test failed at ${op.path}`);
      } else throw new Error(`unsupported op ${op.op}`);
    } else if (typeof parent === 'object' && parent !== null) {
      const record = parent as Record<string, Json>;
      if (op.op !== 'add' && !Object.hasOwn(record, last)) throw new Error(`path not found: ${op.path}`);
      if (op.op === 'add' || op.op === 'replace') record[last] = structuredClone(op.value);
      else if (op.op === 'remove') delete record[last];
      else if (op.op === 'test') {
        if (JSON.stringify(record[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
      } else throw new Error(`unsupported op ${op.op}`);
    } else {
      throw new Error(`path not found: ${op.path}`);
    }
  }
  return doc as T;
}
