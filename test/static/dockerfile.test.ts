/**
 * The container image, checked without a container engine (none runs on the build machines).
 * A small Dockerfile parser feeds a list of named rules; each rule must pass on the real Dockerfile, and
 * a mutant list proves that each one fails when the Dockerfile breaks in the way the rule is about.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dockerfileText = readFileSync(join(root, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const containerConfigPath = join(root, 'deploy/docker/proxy.yaml');
const buildScript = join(root, 'deploy/build-image.sh');

interface Instruction {
  keyword: string;
  /** Leading --name=value flags (COPY --from, HEALTHCHECK --interval, …). */
  flags: Record<string, string>;
  /** The rest of the line after the flags. */
  args: string;
  /** The JSON-array (exec) form, when the arguments are one. */
  exec?: string[];
}

interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Comment lines dropped, `\` continuations joined, one instruction per logical line, grouped by FROM. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*#/.test(line)) continue; // also inside a continuation, as Docker does
    const continued = /\\\s*$/.test(line);
    pending += continued ? line.replace(/\\\s*$/, ' ') : line;
    if (continued) continue;
    if (pending.trim() !== '') logical.push(pending.trim());
    pending = '';
  }
  if (pending.trim() !== '') logical.push(pending.trim());

  const stages: Stage[] = [];
  for (const line of logical) {
    const instruction = parseInstruction(line);
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = instruction.args.split(/\s+/);
      stages.push({ base, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`instruction before the first FROM: ${line}`);
    stage.instructions.push(instruction);
  }
  return stages;
}

function parseInstruction(line: string): Instruction {
  const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
  let args = rest;
  const flags: Record<string, string> = {};
  for (let flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args); flag; flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args)) {
    flags[flag[1]!] = flag[2] ?? 'true';
    args = args.slice(flag[0].length);
  }
  return { keyword: keyword.toUpperCase(), flags, args, exec: parseExec(args) };
}

function parseExec(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(args);
    return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `KEY=value KEY2="v 2"` (and the legacy `KEY value`) as name/value pairs. */
function parseAssignments(args: string): Array<[string, string]> {
  if (!/^[^\s=]+=/.test(args)) {
    const [name = '', ...value] = args.split(/\s+/);
    return [[name, value.join(' ')]];
  }
  return [...args.matchAll(/([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g)].map(([, name = '', value = '']) => [
    name,
    value.replace(/^(["'])(.*)\1$/, '$2'),
  ]);
}

interface Context {
  stages: Stage[];
  final: Stage;
  listenPort: number;
  adminPort: number;
  storeDir: string;
}

function context(text: string): Context {
  const stages = parseDockerfile(text);
  const raw = parseYaml(readFileSync(containerConfigPath, 'utf8')) as { listen: string; admin: string; store: { path: string } };
  const port = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
  return {
    stages,
    final: stages.at(-1)!,
    listenPort: port(raw.listen),
    adminPort: port(raw.admin),
    storeDir: posix.dirname(raw.store.path),
  };
}

const find = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const indexOf = (stage: Stage, keyword: string) => stage.instructions.findIndex((instruction) => instruction.keyword === keyword);
/** WORKDIR in effect at instruction `index` of the stage (relative WORKDIRs resolve against the previous one). */
function workdirAt(stage: Stage, index: number): string {
  return stage.instructions
    .slice(0, index)
    .filter((i) => i.keyword === 'WORKDIR')
    .reduce((dir, i) => posix.resolve(dir, i.args), '/');
}
/** COPY/ADD instructions with the WORKDIR each one resolves its destination against. */
const copies = (stage: Stage) =>
  stage.instructions.flatMap((i, index) => {
    if (i.keyword !== 'COPY' && i.keyword !== 'ADD') return [];
    const parts = i.exec ?? i.args.split(/\s+/);
    return [{ from: i.flags.from, sources: parts.slice(0, -1), dest: parts.at(-1)!, workdir: workdirAt(stage, index) }];
  });
const secretLike = /(secret|password|token|key)/i;
const nodeLts =
  /^node:(20|22|24)(\.\d+)*-(bookworm-|bullseye-|trixie-)?slim(@sha256:[0-9a-f]{64})?$|^gcr\.io\/distroless\/nodejs(20|22|24)-debian\d+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/;

/** Each rule returns a problem, or undefined when the Dockerfile is right. */
const rules: Record<string, (c: Context) => string | undefined> = {
  'is multi-stage': (c) => (c.stages.length >= 2 ? undefined : `${c.stages.length} stage(s)`),
  'final base is a slim Node LTS image': (c) => (nodeLts.test(c.final.base) ? undefined : `final base ${c.final.base}`),
  'final stage runs as a non-root USER set before ENTRYPOINT/CMD': (c) => {
    const users = c.final.instructions.map((i, index) => ({ i, index })).filter(({ i }) => i.keyword === 'USER');
    const last = users.at(-1);
    if (!last) return 'no USER in the final stage';
    const user = last.i.args.split(':')[0];
    if (user === 'root' || user === '0' || user === '') return `USER ${last.i.args}`;
    const runs = [indexOf(c.final, 'ENTRYPOINT'), indexOf(c.final, 'CMD')].filter((index) => index >= 0);
    return runs.every((index) => index > last.index) ? undefined : 'USER comes after ENTRYPOINT/CMD';
  },
  'no ARG or ENV looks like a secret': (c) => {
    const found = c.stages
      .flatMap((stage) => stage.instructions)
      .filter((i) => i.keyword === 'ARG' || i.keyword === 'ENV')
      .flatMap((i) => parseAssignments(i.args).map(([name, value]) => ({ keyword: i.keyword, name, value })))
      .filter(({ name, value }) => secretLike.test(name) || secretLike.test(value));
    return found.length === 0 ? undefined : found.map(({ keyword, name }) => `${keyword} ${name}`).join(', ');
  },
  'ENTRYPOINT runs the package bin with node': (c) => {
    const index = indexOf(c.final, 'ENTRYPOINT');
    const entrypoint = c.final.instructions[index]?.exec;
    if (!entrypoint || entrypoint[0] !== 'node' || !entrypoint[1]) return `ENTRYPOINT ${JSON.stringify(entrypoint)}`;
    const workdir = workdirAt(c.final, index);
    const script = posix.resolve(workdir, entrypoint[1]);
    const expected = posix.resolve(workdir, pkg.bin['oauth-sidecar']!);
    if (script !== expected) return `ENTRYPOINT runs ${script}, package.json bin is ${expected}`;
    const binDir = posix.dirname(expected);
    const copied = copies(c.final).some(
      (copy) =>
        copy.from === undefined &&
        copy.sources.some((source) => source.replace(/\/$/, '') === 'bin') &&
        posix.resolve(copy.workdir, copy.dest) === binDir,
    );
    return copied ? undefined : `bin/ is not copied to ${binDir}`;
  },
  'ENTRYPOINT and CMD are exec form (node is PID 1 and gets SIGTERM)': (c) => {
    const bad = c.final.instructions.filter((i) => (i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD') && !i.exec);
    if (find(c.final, 'ENTRYPOINT').length === 0) return 'no ENTRYPOINT';
    return bad.length === 0 ? undefined : bad.map((i) => `${i.keyword} ${i.args}`).join(', ');
  },
  'STOPSIGNAL is SIGTERM': (c) => {
    const signal = find(c.final, 'STOPSIGNAL').at(-1)?.args;
    return signal === undefined || signal === 'SIGTERM' ? undefined : `STOPSIGNAL ${signal}`;
  },
  'CMD serves the config the image ships': (c) => {
    const cmd = find(c.final, 'CMD').at(-1)?.exec ?? [];
    const configPath = cmd[cmd.indexOf('--config') + 1];
    const shipped = copies(c.final).find((copy) => copy.sources.includes('deploy/docker/proxy.yaml'));
    if (cmd[0] !== 'serve' || !configPath) return `CMD ${JSON.stringify(cmd)}`;
    return shipped?.dest === configPath ? undefined : `CMD reads ${configPath}, deploy/docker/proxy.yaml is copied to ${shipped?.dest}`;
  },
  'EXPOSE matches the ports in deploy/docker/proxy.yaml': (c) => {
    const exposed = find(c.final, 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map((port) => Number(port.replace(/\/tcp$/, '')));
    const missing = [c.listenPort, c.adminPort].filter((port) => !exposed.includes(port));
    if (!exposed.includes(8080) || !exposed.includes(9901)) return `EXPOSE ${exposed.join(' ')} lacks 8080 or 9901`;
    return missing.length === 0 ? undefined : `proxy.yaml ports ${missing.join(', ')} not exposed`;
  },
  'HEALTHCHECK calls /healthz on the admin port with node': (c) => {
    const check = find(c.final, 'HEALTHCHECK').at(-1);
    const command = check?.exec ?? parseExec(check?.args.replace(/^CMD\s+/, '') ?? '');
    if (!check || !command) return 'no exec-form HEALTHCHECK CMD';
    const text = command.join(' ');
    if (command[0] !== 'node' || /\b(curl|wget)\b/.test(text)) return `HEALTHCHECK runs ${command[0]}`;
    return text.includes(`:${c.adminPort}/healthz`) ? undefined : `HEALTHCHECK does not fetch :${c.adminPort}/healthz`;
  },
  'final stage ships no sources, tests or dev dependencies': (c) => {
    const problems: string[] = [];
    for (const copy of copies(c.final)) {
      for (const source of copy.sources) {
        if (copy.from === undefined && /^(\.|\.\/|src|test)(\/|$)/.test(source)) problems.push(`copies ${source} from the context`);
        const from = c.stages.find((stage) => stage.name === copy.from);
        if (from) {
          // Relative to where the other stage worked: its sources, tests, or the whole tree.
          const workdir = workdirAt(from, from.instructions.length);
          const relative = posix.relative(workdir, posix.resolve(workdir, source));
          if (relative === '' || /^(src|test)(\/|$)|\.ts$/.test(relative)) problems.push(`copies ${source} from ${copy.from}`);
        }
        if (!source.includes('node_modules')) continue;
        const runs = from
          ? find(from, 'RUN')
              .map((i) => i.args)
              .join('\n')
          : '';
        if (!/npm (ci|install|prune)\b[^\n]*--omit=dev|npm prune\b[^\n]*--production/.test(runs))
          problems.push(`node_modules from ${copy.from ?? 'the context'}, which keeps dev dependencies`);
      }
    }
    return problems.length === 0 ? undefined : problems.join('; ');
  },
  'the store directory is a VOLUME and NODE_ENV is production': (c) => {
    const volumes = find(c.final, 'VOLUME').flatMap((i) => i.exec ?? i.args.split(/\s+/));
    if (!volumes.includes(c.storeDir)) return `VOLUME ${volumes.join(' ')} lacks ${c.storeDir}`;
    const env = find(c.final, 'ENV').flatMap((i) => parseAssignments(i.args));
    return env.some(([name, value]) => name === 'NODE_ENV' && value === 'production') ? undefined : 'NODE_ENV is not production';
  },
};

/** Each rule, broken on purpose: [rule, text to replace, replacement]. */
const mutants: Array<[string, string | RegExp, string]> = [
  ['is multi-stage', /^[\s\S]*?(?=FROM node:24-bookworm-slim AS runtime)/, ''],
  ['final base is a slim Node LTS image', 'FROM node:24-bookworm-slim AS runtime', 'FROM node:24-bookworm AS runtime'],
  ['final base is a slim Node LTS image', 'FROM node:24-bookworm-slim AS runtime', 'FROM node:23-bookworm-slim AS runtime'],
  ['final stage runs as a non-root USER set before ENTRYPOINT/CMD', 'USER 10001:10001', 'USER 0'],
  ['final stage runs as a non-root USER set before ENTRYPOINT/CMD', 'USER 10001:10001', 'USER root:root'],
  ['final stage runs as a non-root USER set before ENTRYPOINT/CMD', 'USER 10001:10001', ''],
  ['final stage runs as a non-root USER set before ENTRYPOINT/CMD', /USER 10001:10001\n([\s\S]*)$/, '$1\nUSER 10001'],
  ['no ARG or ENV looks like a secret', 'ARG REVISION=unknown', 'ARG NPM_TOKEN'],
  ['no ARG or ENV looks like a secret', 'ENV NODE_ENV=production', 'ENV NODE_ENV=production COLLABORATE_CLIENT_SECRET=abc'],
  ['no ARG or ENV looks like a secret', 'ENV NODE_ENV=production', 'ENV API_KEY hunter2'],
  ['ENTRYPOINT runs the package bin with node', '"/app/bin/oauth-sidecar.js"', '"/app/dist/main.js"'],
  ['ENTRYPOINT runs the package bin with node', 'COPY bin/ ./bin/\nCOPY package.json', 'COPY package.json'],
  ['ENTRYPOINT runs the package bin with node', 'ENTRYPOINT ["node",', 'ENTRYPOINT ["npm", "exec",'],
  ['ENTRYPOINT and CMD are exec form (node is PID 1 and gets SIGTERM)', /ENTRYPOINT \[.*\]/, 'ENTRYPOINT node /app/bin/oauth-sidecar.js'],
  [
    'ENTRYPOINT and CMD are exec form (node is PID 1 and gets SIGTERM)',
    /CMD \["serve".*\]/,
    'CMD serve --config /etc/oauth-sidecar/proxy.yaml',
  ],
  ['STOPSIGNAL is SIGTERM', 'STOPSIGNAL SIGTERM', 'STOPSIGNAL SIGKILL'],
  ['CMD serves the config the image ships', '"--config", "/etc/oauth-sidecar/proxy.yaml"', '"--config", "/app/proxy.yaml"'],
  ['EXPOSE matches the ports in deploy/docker/proxy.yaml', 'EXPOSE 8080 9901', 'EXPOSE 8080'],
  [
    'HEALTHCHECK calls /healthz on the admin port with node',
    /CMD \["node", "-e", "fetch.*\]/,
    'CMD ["curl", "-f", "http://127.0.0.1:9901/healthz"]',
  ],
  ['HEALTHCHECK calls /healthz on the admin port with node', '9901/healthz', '9901/readyz'],
  ['HEALTHCHECK calls /healthz on the admin port with node', '127.0.0.1:9901/healthz', '127.0.0.1:8080/healthz'],
  [
    'final stage ships no sources, tests or dev dependencies',
    'COPY --from=prod-deps /build/node_modules/',
    'COPY --from=build /build/node_modules/',
  ],
  ['final stage ships no sources, tests or dev dependencies', 'COPY package.json ./', 'COPY . ./'],
  ['final stage ships no sources, tests or dev dependencies', 'COPY package.json ./', 'COPY --from=build /build/src/ ./src/'],
  ['final stage ships no sources, tests or dev dependencies', 'COPY package.json ./', 'COPY --from=build /build/ ./'],
  ['the store directory is a VOLUME and NODE_ENV is production', 'VOLUME ["/var/lib/oauth-sidecar"]', 'VOLUME ["/data"]'],
  ['the store directory is a VOLUME and NODE_ENV is production', 'ENV NODE_ENV=production', 'ENV NODE_ENV=development'],
];

describe('Dockerfile', () => {
  const real = context(dockerfileText);

  it.each(Object.keys(rules))('%s', (name) => {
    expect(rules[name]!(real)).toBeUndefined();
  });

  it('parses into the stages it declares', () => {
    expect(real.stages.map((stage) => stage.name)).toEqual(['build', 'prod-deps', 'runtime']);
    expect(find(real.final, 'HEALTHCHECK')[0]!.flags).toMatchObject({ interval: '30s', retries: '3' });
  });

  it('every rule has a mutant', () => {
    expect(Object.keys(rules).filter((name) => !mutants.some(([rule]) => rule === name))).toEqual([]);
  });

  it.each(mutants)('fails when broken: %s (%s → %s)', (rule, from, to) => {
    const broken = dockerfileText.replace(from, to);
    expect(broken).not.toBe(dockerfileText);
    expect(rules[rule]!(context(broken))).toEqual(expect.any(String));
  });
});

describe('deploy/docker/proxy.yaml', () => {
  it('is valid, keeps the proxy port on loopback and the admin port reachable, and stores tokens in the volume', () => {
    const config = loadConfigFile(containerConfigPath, { env: {} });
    // The proxy spends the credentials for whoever reaches it: only processes in the same network namespace.
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.inboundAuth.keys).toEqual([]);
    // Probes and health checks come from outside the container's loopback; admin is read-only.
    expect(config.admin).toEqual({ host: '0.0.0.0', port: 9901 });
    expect(config.store).toEqual({ type: 'file', path: '/var/lib/oauth-sidecar/tokens.json' });
  });

  it('becomes a published config with a client key by the commands deploy/docker/README.md gives', () => {
    const readme = readFileSync(join(root, 'deploy/docker/README.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    // Everything up to the `check` line, which needs a build; the test loads the result itself instead.
    const commands = block.split('\n').filter((line) => line.trim() !== '' && !line.includes('oauth-sidecar.js'));
    expect(commands.join('\n')).toContain('sha256sum');
    // docs/kubernetes.md (where the README links for Docker) gives the same commands.
    const section =
      /^## Publish the proxy port with a client key\n[\s\S]*?(?=^## )/m.exec(readFileSync(join(root, 'docs/kubernetes.md'), 'utf8'))?.[0] ??
      '';
    for (const line of block.split('\n').filter((l) => l.trim() !== '')) expect(section).toContain(line);
    const dir = mkdtempSync(join(tmpdir(), 'docker-readme-'));
    try {
      mkdirSync(join(dir, 'deploy/docker'), { recursive: true });
      writeFileSync(join(dir, 'deploy/docker/proxy.yaml'), readFileSync(containerConfigPath));
      const run = spawnSync('bash', ['--norc', '--noprofile', '-euc', `${commands.join('\n')}\nprintf %s "$KEY"`], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const key = run.stdout;
      expect(key).toMatch(/^[0-9a-f]{64}$/);

      const published = loadConfigFile(join(dir, 'proxy.published.yaml'), { env: {} });
      const image = loadConfigFile(containerConfigPath, { env: {} });
      expect(published.listen).toEqual({ host: '0.0.0.0', port: 8080 });
      expect(published.inboundAuth).toEqual({
        header: 'x-sidecar-key',
        keys: [{ name: 'my-app', sha256: createHash('sha256').update(key).digest('hex') }],
      });
      // Everything else is the image's config (the file's own hash differs, as its text does).
      expect({ ...published, source: '', sha256: '', listen: image.listen, inboundAuth: image.inboundAuth }).toEqual({
        ...image,
        source: '',
        sha256: '',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts in needs-credentials state with an empty environment, and takes credentials from it', () => {
    const bare = loadConfigFile(containerConfigPath, { env: {} });
    const missing = Object.fromEntries(bare.upstreams.map((upstream) => [upstream.name, upstream.auth.missing.length]));
    expect(missing).toMatchObject({ collaborate: 2, v3: 2 });
    expect(bare.upstreams.every((upstream) => upstream.auth.refreshToken === undefined)).toBe(true);

    const env = { COLLABORATE_CLIENT_ID: 'id', COLLABORATE_CLIENT_SECRET: 'secret', V3_CLIENT_ID: 'id', V3_CLIENT_SECRET: 'secret' };
    const given = loadConfigFile(containerConfigPath, { env });
    expect(given.upstreams.map((upstream) => upstream.auth.missing)).toEqual(given.upstreams.map(() => []));
  });

  it('references every credential as an optional ${VAR:-}', () => {
    const raw = parseYaml(readFileSync(containerConfigPath, 'utf8')) as { upstreams: Record<string, { auth: Record<string, unknown> }> };
    const credentials = Object.values(raw.upstreams).flatMap(({ auth }) =>
      Object.entries(auth).filter(([key]) =>
        ['clientId', 'clientSecret', 'refreshToken', 'username', 'password', 'tppToken'].includes(key),
      ),
    );
    expect(credentials.length).toBeGreaterThan(0);
    for (const [key, value] of credentials) expect({ key, value }).toEqual({ key, value: expect.stringMatching(/^\$\{[A-Z0-9_]+:-\}$/) });
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  /** Docker's rules, simplified: patterns are relative to the context root, later `!` exceptions re-include. */
  const ignored = (path: string) => {
    let result = false;
    for (const pattern of patterns) {
      const exception = pattern.startsWith('!');
      const glob = pattern.replace(/^!/, '').replace(/^\//, '').replace(/\/$/, '');
      const source = glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\/?/g, '\0')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\0/g, '(.*/)?');
      if (new RegExp(`^${source}(/.*)?$`).test(path)) result = !exception;
    }
    return result;
  };

  it('keeps node_modules, .git, tests, data and env files out', () => {
    for (const entry of ['node_modules', '.git', 'test', 'data', '.env', 'coverage', 'bench', 'dist'])
      expect({ entry, listed: patterns.includes(entry) }).toEqual({ entry, listed: true });
    for (const path of [
      'node_modules/yaml/package.json',
      '.git/HEAD',
      'test/static/dockerfile.test.ts',
      'data/tokens.json',
      '.env.local',
      'proxy.yaml',
      'deploy/tls.key',
    ]) {
      expect({ path, ignored: ignored(path) }).toEqual({ path, ignored: true });
    }
  });

  it('lets in every file the Dockerfile copies from the context', () => {
    const sources = context(dockerfileText)
      .stages.flatMap((stage) => copies(stage))
      .filter((copy) => copy.from === undefined)
      .flatMap((copy) => copy.sources);
    const files = sources.flatMap((source) => {
      const path = join(root, source);
      return statSync(path).isDirectory()
        ? readdirSync(path, { recursive: true, encoding: 'utf8' }).map((file) => posix.join(source.replace(/\/$/, ''), file))
        : [source];
    });
    expect(files).toContain('deploy/docker/proxy.yaml');
    expect(files.filter(ignored)).toEqual([]);
  });
});

describe('deploy/build-image.sh', () => {
  const temps: string[] = [];
  afterAll(() => {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  /** A PATH with only the tools the script needs besides the builders, plus the given fake builders. */
  function pathWith(fakes: Record<string, string>): { path: string; log: string } {
    const dir = mkdtempSync(join(tmpdir(), 'build-image-'));
    temps.push(dir);
    for (const tool of ['bash', 'dirname']) {
      const found = ['/usr/bin', '/bin', '/usr/local/bin'].map((base) => join(base, tool)).find((file) => existsSync(file));
      if (!found) throw new Error(`${tool} not found`);
      symlinkSync(found, join(dir, tool));
    }
    for (const [name, body] of Object.entries(fakes)) {
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    }
    return { path: dir, log: join(dir, 'calls.log') };
  }

  function run(path: string, args: string[] = []) {
    // From another directory, to show that the script finds the repository on its own.
    return spawnSync(buildScript, args, { cwd: tmpdir(), env: { PATH: path }, encoding: 'utf8', timeout: 10_000 });
  }

  it('is valid bash and executable', () => {
    const result = spawnSync('bash', ['-n', buildScript], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(statSync(buildScript).mode & 0o111).not.toBe(0);
  });

  it('fails with a clear message when neither docker nor buildah is installed', () => {
    const result = run(pathWith({}).path);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('neither docker nor buildah is installed');
  });

  it('fails with a clear message when docker is installed but its engine does not answer', () => {
    const result = run(pathWith({ docker: 'exit 1' }).path);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("no Docker engine answers ('docker info' failed)");
  });

  it('builds with docker when its engine answers, tagged with the package version by default', () => {
    const { path, log } = pathWith({ docker: `[ "$1" = info ] && exit 0\nprintf '%s\\n' "$PWD" "$@" > "$(dirname "$0")/calls.log"` });
    const result = run(path);
    expect(result.status).toBe(0);
    const [cwd, ...argv] = readFileSync(log, 'utf8').trim().split('\n');
    expect(cwd).toBe(root.replace(/\/$/, ''));
    expect(argv).toEqual([
      'build',
      '--file',
      'Dockerfile',
      '--tag',
      `oauth-sidecar:${pkg.version}`,
      '--build-arg',
      `VERSION=${pkg.version}`,
      '--build-arg',
      'REVISION=unknown',
      '.',
    ]);
  });

  it('falls back to buildah (docker image format, so HEALTHCHECK is kept) with the given tag', () => {
    const { path, log } = pathWith({ docker: 'exit 1', buildah: `printf '%s\\n' "$@" > "$(dirname "$0")/calls.log"` });
    const result = run(path, ['registry.example/oauth-sidecar:test']);
    expect(result.status).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'bud',
      '--format',
      'docker',
      '--file',
      'Dockerfile',
      '--tag',
      'registry.example/oauth-sidecar:test',
      '--build-arg',
      `VERSION=${pkg.version}`,
      '--build-arg',
      'REVISION=unknown',
      '.',
    ]);
  });
});
