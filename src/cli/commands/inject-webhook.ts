/**
 * `inject-webhook`: the command line of the Kubernetes sidecar injection webhook. The TLS key is named by
 * a file path (a mounted Secret), never given on the command line.
 */
import { defaultImage, defaultListen, serveInjectWebhook, type InjectWebhookArgs } from '../../inject/run.js';
import { UsageError } from '../../errors.js';
import { cliCommand } from '../../operator-hints.js';
import { parseCommandLine } from '../args.js';
import { defineCommand } from '../command-spec.js';
import { packageVersion } from '../package-version.js';
import { runCommand } from '../run-command.js';

export const injectWebhookCommand = defineCommand({
  name: 'inject-webhook',
  summary: 'the Kubernetes sidecar injection webhook',
  options: {
    'tls-cert': {
      type: 'string',
      value: 'FILE',
      needs: 'a file path',
      required: true,
      description: "PEM serving certificate (chain) for the webhook Service's DNS name",
    },
    'tls-key': {
      type: 'string',
      value: 'FILE',
      needs: 'a file path',
      required: true,
      description: 'PEM private key (a file, never the key itself)',
    },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      needs: 'HOST:PORT, e.g. 0.0.0.0:8443',
      default: defaultListen,
      description: 'where to listen',
    },
    image: {
      type: 'string',
      value: 'IMAGE',
      needs: 'an image reference',
      description: 'the sidecar image to inject',
      defaultText: `$OAUTH_SIDECAR_IMAGE, else ${defaultImage}`,
    },
    'log-level': {
      type: 'string',
      value: 'LEVEL',
      needs: 'a log level, e.g. info',
      default: 'info',
      description: 'fatal, error, warn, info, debug or trace',
    },
    'tls-reload-seconds': {
      type: 'string',
      value: 'SECONDS',
      needs: 'a number of seconds',
      default: '10',
      description: 'how often to read the TLS files again, so that a rotated certificate is served without a restart; 0: never',
    },
  },
  description: () => `Serves the Kubernetes mutating admission webhook that adds the proxy to pods annotated
oauth-sidecar.io/inject: "true" (see deploy/kubernetes/webhook/). POST /mutate, GET /healthz, HTTPS
only.`,
  exitStatus: '0 after SIGTERM or SIGINT, 1 when the TLS files cannot be read or it cannot start',
  interpret: (values, _operands, env): InjectWebhookArgs => {
    const colon = values.listen.lastIndexOf(':');
    const host = values.listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(values.listen.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError('--listen must be HOST:PORT, e.g. 0.0.0.0:8443');
    const tlsReloadSeconds = Number(values['tls-reload-seconds']);
    if (!Number.isFinite(tlsReloadSeconds) || tlsReloadSeconds < 0)
      throw new UsageError('--tls-reload-seconds takes a number of seconds (0: never)');
    return {
      certFile: values['tls-cert'],
      keyFile: values['tls-key'],
      host,
      port,
      image: values.image ?? (env.OAUTH_SIDECAR_IMAGE || defaultImage),
      logLevel: values['log-level'],
      tlsReloadSeconds,
    };
  },
  run: (args) => serveInjectWebhook(args),
});

/**
 * The arguments of a run (what follows the command name) as the webhook uses them; throws UsageError.
 * --help and --version are not a run: runInjectWebhook answers them.
 */
export function parseInjectWebhookArgs(argv: readonly string[], env: NodeJS.ProcessEnv): InjectWebhookArgs {
  const line = parseCommandLine(injectWebhookCommand, argv);
  if (line.help || line.version) throw new UsageError('--help and --version print, they do not run the webhook');
  return injectWebhookCommand.interpret(line, env);
}

/** Runs `inject-webhook` with `argv` (what follows the command name); resolves to the exit code. */
export function runInjectWebhook(argv: readonly string[]): Promise<number> {
  return runCommand(injectWebhookCommand, argv, {
    program: cliCommand(process.argv[1], process.cwd()),
    env: process.env,
    version: packageVersion(),
  });
}
