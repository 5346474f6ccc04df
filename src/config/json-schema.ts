/**
 * The JSON Schema of proxy.yaml, generated from the same zod schema the loader uses, so editors
 * (yaml-language-server) complete and check exactly what the proxy accepts. `npm run schema` writes it
 * to proxy.schema.json; a test keeps the committed file in sync.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

/** Keys whose value may come from a file instead (`clientSecretFile: /run/secrets/x`); see load.ts. */
const authFileTwins = ['clientId', 'clientSecret', 'refreshToken', 'username', 'password', 'tppToken'];
const storeFileTwins = ['url', 'password', 'encryptionKey'];

type JsonObject = { [key: string]: unknown };

export function configJsonSchema(): JsonObject {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonObject;
  schema.title = 'oauth-sidecar proxy.yaml';
  const upstream = property(property(schema, 'upstreams'), 'additionalProperties');
  addFileTwins(property(property(upstream, 'properties'), 'auth'), authFileTwins);
  const variants = property(property(schema, 'properties'), 'store').oneOf ?? property(property(schema, 'properties'), 'store').anyOf;
  for (const variant of (variants as JsonObject[] | undefined) ?? []) {
    if (property(property(variant, 'properties'), 'type').const === 'redis') addFileTwins(variant, storeFileTwins);
  }
  return schema;
}

function addFileTwins(objectSchema: JsonObject, keys: readonly string[]): void {
  const properties = property(objectSchema, 'properties');
  for (const key of keys) {
    properties[`${key}File`] = { type: 'string', description: `read ${key} from this file (one trailing newline is dropped)` };
  }
}

function property(value: JsonObject, key: string): JsonObject {
  const inner = value[key] ?? (value.properties as JsonObject | undefined)?.[key];
  if (!inner || typeof inner !== 'object') throw new Error(`config JSON Schema: no "${key}" where expected`);
  return inner as JsonObject;
}
