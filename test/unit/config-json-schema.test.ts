import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';

type Schema = { [key: string]: unknown };
const root = new URL('../../', import.meta.url);

/** Every key path in `value` that the schema does not declare (a small walker: objects, maps, unions by `type`). */
function undeclaredKeys(value: unknown, schema: Schema, path: string[] = []): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const variants = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (variants) {
    const typed = variants.find(
      (variant) => ((variant.properties as Schema | undefined)?.type as Schema | undefined)?.const === (value as Schema).type,
    );
    return typed ? undeclaredKeys(value, typed, path) : [`${path.join('.')}: no variant for type ${String((value as Schema).type)}`];
  }
  const properties = schema.properties as Record<string, Schema> | undefined;
  const map = schema.additionalProperties;
  const problems: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const child = properties?.[key] ?? (typeof map === 'object' ? (map as Schema) : undefined);
    if (!child) problems.push([...path, key].join('.'));
    else problems.push(...undeclaredKeys(item, child, [...path, key]));
  }
  return problems;
}

describe('proxy.schema.json', () => {
  it('is the schema the config loader uses (run `npm run schema` after changing src/config/schema.ts)', () => {
    const committed = JSON.parse(readFileSync(new URL('proxy.schema.json', root), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('declares every key of the shipped example configs, including the …File twins', () => {
    const schema = configJsonSchema();
    for (const file of ['proxy.yaml', 'deploy/docker/proxy.yaml']) {
      expect(undeclaredKeys(parse(readFileSync(new URL(file, root), 'utf8')), schema), file).toEqual([]);
    }
    const withTwins = {
      store: { type: 'redis', url: 'redis://x:1', passwordFile: '/p', encryptionKeyFile: '/k' },
      upstreams: { a: { target: 'https://a', auth: { preset: 'v3', tokenUrl: 'https://a/t', clientSecretFile: '/s' } } },
    };
    expect(undeclaredKeys(withTwins, schema)).toEqual([]);
    expect(
      undeclaredKeys(
        { upstreams: { a: { target: 'https://a', auth: { preset: 'v3', tokenUrl: 'https://a/t', clientSecrt: 'x' } } } },
        schema,
      ),
    ).toEqual(['upstreams.a.auth.clientSecrt']);
  });

  it('is referenced from proxy.yaml with a yaml-language-server modeline', () => {
    expect(readFileSync(new URL('proxy.yaml', root), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=./proxy.schema.json');
  });
});
