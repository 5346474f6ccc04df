/**
 * Every command of `oauth-sidecar`, in the order the main help lists them. A command is described once,
 * in its file (name, summary, options, help, handler); parsing and help are generated from this table.
 */
import type { CommandTable } from './args.js';
import { checkCommand } from './commands/check.js';
import { injectWebhookCommand } from './commands/inject-webhook.js';
import { loginCommand } from './commands/login.js';
import { schemaCommand } from './commands/schema.js';
import { seedCommand } from './commands/seed.js';
import { serveCommand } from './commands/serve.js';
import { statusCommand } from './commands/status.js';

export const commandTable: CommandTable = {
  commands: [serveCommand, checkCommand, seedCommand, loginCommand, statusCommand, injectWebhookCommand, schemaCommand],
  defaultCommand: serveCommand,
};
