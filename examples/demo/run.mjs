#!/usr/bin/env node
/**
 * `npm run demo`: local stand-ins for Collaborate, Apiax and v3 (./stand-ins.mjs) plus the real proxy
 * wired to them, so a newcomer can watch tokens expire, get rejected upstream, refresh and replay.
 *
 * Flags (all optional):
 *   --port N            proxy port (default env DEMO_PORT or 8080)
 *   --admin-port N      admin port (default env DEMO_ADMIN_PORT or 9901)
 *   --free-ports        let the OS pick both ports (port 0); the URLs are printed once known
 *   --lifetime S        access-token lifetime the stand-ins advertise (default 20)
 *   --expire-after S    when the stand-ins really expire a token (default 30% of the lifetime, so that
 *                       requests meet a dead token before the proxy's early refresh at half the lifetime)
 *   --traffic / --no-traffic   one request per upstream every --interval seconds (default on)
 *   --interval S        traffic interval (default: a fifth of the lifetime, at most 3 s)
 *   --store file|memory token store (default file, in a temporary directory)
 *   --seconds N         stop by itself after N seconds (for tests)
 *   --pretty / --json   force the log format (default: pretty when stdout is a terminal, else JSON lines)
 *
 * SIGINT/SIGTERM (Ctrl-C) stops the proxy and the stand-ins and removes the temporary directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startStandIns } from './stand-ins.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(repoRoot, 'bin', 'oauth-sidecar.js');

function parseArgs(argv) {
  const options = {
    port: Number(process.env.DEMO_PORT ?? 8080),
    adminPort: Number(process.env.DEMO_ADMIN_PORT ?? 9901),
    lifetime: 20,
    expireAfter: undefined,
    traffic: true,
    interval: undefined,
    store: 'file',
    seconds: undefined,
    pretty: Boolean(process.stdout.isTTY),
  };
  const value = (i, name) => {
    const v = argv[i + 1];
    if (v === undefined) fail(`${name} needs a value`);
    return v;
  };
  const number = (i, name) => {
    const n = Number(value(i, name));
    if (!Number.isFinite(n) || n < 0) fail(`${name} needs a non-negative number`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    switch (arg) {
      case '--port':
        options.port = number(i++, arg);
        break;
      case '--admin-port':
        options.adminPort = number(i++, arg);
        break;
      case '--free-ports':
        options.port = 0;
        options.adminPort = 0;
        break;
      case '--lifetime':
        options.lifetime = number(i++, arg);
        break;
      case '--expire-after':
        options.expireAfter = number(i++, arg);
        break;
      case '--traffic':
        options.traffic = true;
        break;
      case '--no-traffic':
        options.traffic = false;
        break;
      case '--interval':
        options.interval = number(i++, arg);
        break;
      case '--store':
        options.store = value(i++, arg);
        break;
      case '--seconds':
        options.seconds = number(i++, arg);
        break;
      case '--pretty':
        options.pretty = true;
        break;
      case '--json':
        options.pretty = false;
        break;
      case '--help':
      case '-h':
        console.log(
          'usage: node examples/demo/run.mjs [--port N] [--admin-port N] [--free-ports] [--lifetime S] [--expire-after S] [--no-traffic] [--interval S] [--store file|memory] [--seconds N] [--pretty|--json]',
        );
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${arg}`);
    }
  }
  if (!['file', 'memory'].includes(options.store)) fail('--store must be file or memory');
  if (!(options.lifetime > 0)) fail('--lifetime must be above 0');
  options.expireAfter ??= Math.max(Math.round(3 * options.lifetime) / 10, 0.1);
  options.interval ??= Math.max(0.25, Math.min(3, options.lifetime / 5));
  return options;
}

function fail(message) {
  console.error(`demo: ${message}`);
  process.exit(2);
}

// ---- pretty log lines -------------------------------------------------------------------------------

const colors = { fatal: 31, error: 31, warn: 33, info: 32, debug: 90, trace: 90 };

/** One readable line for one of the proxy's JSON log lines (pino: time, level, msg, plus fields). */
export function formatLogLine(entry, useColor = true) {
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : new Date(entry.time ?? Date.now()).toISOString().slice(11, 23);
  const level = String(entry.level ?? 'info');
  const paint = (code, text) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
  const parts = [paint(90, time), paint(colors[level] ?? 0, level.toUpperCase().padEnd(5))];
  if (entry.upstream) parts.push(paint(36, String(entry.upstream).padEnd(11)));
  if (entry.msg === 'request') {
    parts.push(`${entry.method} ${entry.path} -> ${entry.status} ${entry.durationMs} ms`);
    if (entry.generation !== undefined) parts.push(`gen=${entry.generation}`);
    if (entry.replayed) parts.push(paint(35, 'REPLAYED'));
    if (entry.error) parts.push(`error=${entry.error}`);
  } else {
    parts.push(entry.event ? paint(1, entry.event) : '');
    const details = [];
    for (const key of ['reason', 'generation', 'expiresInSeconds', 'latencyMs', 'httpStatus', 'status', 'replayed', 'proxy', 'admin']) {
      if (entry[key] !== undefined) details.push(`${key === 'generation' ? 'gen' : key}=${entry[key]}`);
    }
    parts.push(details.join(' '));
    if (entry.msg) parts.push(paint(90, `— ${entry.msg}`));
  }
  return parts.filter(Boolean).join(' ');
}

// ---- the demo ---------------------------------------------------------------------------------------

function proxyYaml({ standIns, port, adminPort, store, storePath }) {
  const q = (s) => JSON.stringify(s);
  const lines = [
    '# written by examples/demo/run.mjs; removed when the demo stops',
    `listen: 127.0.0.1:${port}`,
    `admin: 127.0.0.1:${adminPort}`,
    'log:',
    '  level: info',
    '  accessLog: true',
    'store:',
    `  type: ${store}`,
    ...(store === 'file' ? [`  path: ${q(storePath)}`] : []),
    'drainTimeoutMs: 2000',
    'upstreams:',
  ];
  for (const standIn of standIns.all) {
    const seed = standIn.seed;
    lines.push(
      `  ${standIn.name}:`,
      `    target: ${q(seed.target)}`,
      '    auth:',
      `      preset: ${seed.preset}`,
      `      tokenUrl: ${q(seed.tokenUrl)}`,
    );
    if (seed.clientId) lines.push(`      clientId: ${q(seed.clientId)}`);
    if (seed.clientSecret) lines.push(`      clientSecret: ${q(seed.clientSecret)}`);
    lines.push(`      refreshToken: ${q(seed.refreshToken)}`);
  }
  return `${lines.join('\n')}\n`;
}

const demoPaths = { collaborate: '/collaborate/api/3/sites', apiax: '/apiax/api/v1/rules', v3: '/v3/v3/accounts' };

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const say = (text) => process.stdout.write(`${text}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'oauth-sidecar-demo-'));
  const configPath = join(dir, 'proxy.yaml');
  let standIns;
  let proxy;
  let trafficTimer;
  let stopTimer;
  let stopping;

  const stop = (code) => {
    stopping ??= (async () => {
      clearInterval(trafficTimer);
      clearTimeout(stopTimer);
      if (proxy && proxy.exitCode === null && proxy.signalCode === null) {
        const exited = new Promise((resolve) => proxy.once('exit', resolve));
        proxy.kill('SIGTERM');
        const killer = setTimeout(() => proxy.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await standIns?.close();
      rmSync(dir, { recursive: true, force: true });
      say(`demo: stopped${code ? ` (exit ${code})` : ''}`);
      process.exit(code);
    })();
    return stopping;
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    standIns = await startStandIns({ lifetime: options.lifetime, expireAfter: options.expireAfter });
    writeFileSync(
      configPath,
      proxyYaml({ standIns, port: options.port, adminPort: options.adminPort, store: options.store, storePath: join(dir, 'tokens.json') }),
      { mode: 0o600 },
    );
    say(
      `demo: stand-ins ${standIns.all.map((s) => `${s.name} ${s.url}`).join(', ')}; tokens advertised for ${options.lifetime} s, really expire after ${options.expireAfter} s`,
    );

    proxy = spawn(process.execPath, [bin, 'serve', '--config', configPath], {
      cwd: repoRoot,
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    say(`demo: proxy pid ${proxy.pid}, config ${configPath}`);
    let urls;
    let portTaken = false;
    let resolveStarted;
    const started = new Promise((resolve) => (resolveStarted = resolve));
    createInterface({ input: proxy.stdout }).on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = undefined;
      }
      if (entry?.event === 'started') resolveStarted({ proxy: entry.proxy, admin: entry.admin });
      if (entry?.event === 'start_failed' && /EADDRINUSE/.test(String(entry.msg))) portTaken = true;
      say(options.pretty && entry ? formatLogLine(entry) : line);
    });
    proxy.once('exit', (code, signal) => {
      resolveStarted(undefined);
      if (!stopping) {
        say(`demo: the proxy exited (${code ?? signal}) on its own`);
        if (portTaken)
          say('demo: a port it needs is taken (another demo or proxy still running?); npm run demo -- --free-ports picks free ones');
        void stop(1);
      }
    });

    urls = await started;
    if (!urls) return;
    const ready = await waitReady(`${urls.admin}/readyz`, 15_000);
    if (!ready) {
      say(`demo: the proxy did not become ready at ${urls.admin}/readyz`);
      return void stop(1);
    }
    // --admin: with --free-ports the config says port 0, so only the started proxy knows where it listens.
    const statusCommand = `./bin/oauth-sidecar.js status --watch --config ${configPath} --admin ${urls.admin}`;
    say(
      [
        '',
        `demo: ready. The proxy is at ${urls.proxy}, its admin endpoint at ${urls.admin}. Try:`,
        ...Object.values(demoPaths).map((path) => `  curl -s ${urls.proxy}${path}`),
        `  curl -s ${urls.admin}/status`,
        `  curl -s ${urls.admin}/readyz`,
        `  ${statusCommand}`,
        options.traffic
          ? `demo: sending one request per upstream every ${options.interval} s; watch for token_refreshed and REPLAYED/replayed:true`
          : 'demo: no background traffic (--no-traffic)',
        'demo: Ctrl-C stops everything',
        '',
      ].join('\n'),
    );

    if (options.traffic) {
      const tick = () => {
        for (const path of Object.values(demoPaths)) {
          fetch(`${urls.proxy}${path}`, { signal: AbortSignal.timeout(10_000) })
            .then((res) => res.arrayBuffer())
            .catch(() => undefined);
        }
      };
      tick();
      trafficTimer = setInterval(tick, options.interval * 1000);
    }
  } catch (error) {
    say(`demo: ${error instanceof Error ? error.message : String(error)}`);
    return void stop(1);
  }
  if (options.seconds !== undefined) stopTimer = setTimeout(() => void stop(0), options.seconds * 1000);
}

async function waitReady(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

await main();
