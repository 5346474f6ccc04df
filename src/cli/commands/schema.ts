/** `schema`: the JSON Schema of proxy.yaml, for editors and CI. */
import { configJsonSchema } from '../../config/json-schema.js';
import { defineCommand } from '../command-spec.js';

export const schemaCommand = defineCommand({
  name: 'schema',
  summary: 'print the JSON Schema of proxy.yaml',
  options: {},
  description: () => `Prints the JSON Schema of the config file on standard output. \`npm run schema\` writes it to
proxy.schema.json, which editors use to complete and check proxy.yaml.`,
  exitStatus: '0',
  interpret: () => ({}),
  run: async () => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  },
});
