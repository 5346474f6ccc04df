/** `status`: each upstream's credential, from a running proxy's admin endpoint or from the token store. */
import type { Config } from '../../config/types.js';
import { UsageError } from '../../errors.js';
import { defineCommand } from '../command-spec.js';
import { adminStatusSource, collectStatus, openStatusSource } from '../status.js';
import { formatStatusTable } from '../status-table.js';
import { watchStatus } from '../status-watch.js';
import { configOption, configPath, withConfig } from './config-option.js';

interface StatusArgs {
  readonly configPath: string;
  readonly admin: string | undefined;
  readonly json: boolean;
  readonly watch: boolean;
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: "each upstream's credential: state, expiry, refreshes, replays",
  options: {
    config: configOption,
    admin: {
      type: 'string',
      value: 'URL',
      needs: 'the admin URL, e.g. http://127.0.0.1:9901',
      description: "the running proxy's admin listener",
      defaultText: "the config's admin address",
    },
    json: { type: 'boolean', default: false, description: 'machine-readable output' },
    watch: {
      type: 'boolean',
      short: 'w',
      default: false,
      description: 'redraw every second until Ctrl-C; with --json, one JSON line per second',
    },
  },
  description: () => `Shows each upstream's credential: state (ok, refreshing, expired, needs credentials, credential
dead), token generation, time to expiry, last refresh (when, outcome, latency), refreshes and
replays in the last hour, token fingerprint (never a token) and the store it lives in. Asks the
running proxy's admin endpoint; when none answers (and --admin is not given), reads the token store
directly, which knows no refresh latency and no counts. Refreshes and replays are those of the
replica asked.`,
  exitStatus: '0 when every upstream is ok, 1 otherwise or when no status could be read; --watch exits 0 on Ctrl-C',
  interpret: (values, _operands, env): StatusArgs => {
    if (values.admin !== undefined && !/^https?:\/\//.test(values.admin))
      throw new UsageError('--admin takes the admin URL, e.g. http://127.0.0.1:9901');
    return { configPath: configPath(values.config, env), admin: values.admin, json: values.json, watch: values.watch };
  },
  run: (args) => withConfig(args.configPath, (config) => status(config, args)),
});

async function status(config: Config, args: StatusArgs): Promise<number> {
  try {
    if (args.watch) return await watch(config, args);
    const report = await collectStatus(config, args.admin);
    process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : formatStatusTable(report)}\n`);
    return report.upstreams.every((upstream) => upstream.state === 'ok') ? 0 : 1;
  } catch (error) {
    process.stderr.write(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function watch(config: Config, args: StatusArgs): Promise<number> {
  // A named proxy that is not up yet (or restarting) shows as an error frame until it answers.
  const source = args.admin ? adminStatusSource(args.admin) : await openStatusSource(config, undefined);
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A reader that goes away (`status --watch | head`) ends the watch instead of an EPIPE crash.
  process.stdout.once('error', stop);
  try {
    await watchStatus(source, { json: args.json, out: process.stdout, signal: interrupted.signal });
    return 0;
  } finally {
    await source.close();
  }
}
