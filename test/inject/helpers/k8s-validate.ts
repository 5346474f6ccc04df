/**
 * Checks Kubernetes objects against the API's OpenAPI schemas, in two passes:
 * 1. kubernetes-models' compiled validators (types, enums, required fields). They accept unknown fields
 *    (the schemas are compiled without additionalProperties: false), so a typo such as `imagePullPolcy`
 *    would pass them.
 * 2. So every object is also type-checked by the TypeScript compiler as an object literal of the model's
 *    interface (`const m: IPod = {…}`): excess-property checks reject any unknown field, at any depth.
 *    The compiler names the first unknown field of each object, so fixing one may reveal the next.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import ts from 'typescript';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  [key: string]: unknown;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function modelPath(obj: K8sObject): string {
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(obj.apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(obj.kind)) {
    throw new Error(`not a Kubernetes apiVersion/kind: ${obj.apiVersion} ${obj.kind}`);
  }
  return `kubernetes-models/${obj.apiVersion}/${obj.kind}`;
}

/** Pass 1: the schema validators. Throws with the validator's message. */
export async function validateWithSchema(obj: K8sObject): Promise<void> {
  const module = (await import(modelPath(obj))) as Record<string, ModelClass>;
  const Model = module[obj.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Pass 2: unknown fields. Returns one message per problem, labelled with the object's `label`. */
export function unknownFieldProblems(objects: ReadonlyArray<{ label: string; obj: K8sObject }>): string[] {
  const virtualFile = path.join(here, '__k8s_objects__.ts');
  const lines: string[] = [];
  objects.forEach(({ obj }, i) => {
    lines.push(`import type { I${obj.kind} as T${i} } from '${modelPath(obj)}';`);
  });
  const starts: number[] = [];
  objects.forEach(({ obj }, i) => {
    starts.push(lines.length);
    lines.push(`export const m${i}: T${i} = ${JSON.stringify(obj, null, 1)};`.split('\n').join('\n'));
  });
  const text = lines.join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) =>
    path.resolve(fileName) === virtualFile
      ? ts.createSourceFile(fileName, text, languageVersion, true)
      : getSourceFile(fileName, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => path.resolve(fileName) === virtualFile || fileExists(fileName);
  const readFile = host.readFile.bind(host);
  host.readFile = (fileName) => (path.resolve(fileName) === virtualFile ? text : readFile(fileName));

  const program = ts.createProgram([virtualFile], options, host);
  const source = program.getSourceFile(virtualFile);
  if (!source) throw new Error('virtual file not loaded');
  const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
  return diagnostics.map((d) => {
    const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line;
    let index = starts.findLastIndex((s) => s <= line);
    if (index < 0) index = 0;
    const label = objects[index]?.label ?? '?';
    return `${label}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
