/**
 * The forward-proxy helper (test/helpers/forward-proxy.ts) is a real proxy that counts truthfully: undici's
 * ProxyAgent tunnels through it to a local HTTPS server, wrong or missing credentials are refused with 407,
 * absolute-form requests are forwarded, and its child process never outlives a stop or its parent.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ProxyAgent, request } from 'undici';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { makeTestPki, type TestCa } from '../helpers/test-pki.js';

let ca: TestCa;
let target: string;
let plainTarget: string;

beforeAll(async () => {
  const pki = makeTestPki();
  ca = pki.newCa('egress-ca');
  const serving = ca.issueServer();
  const secure = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (_request, response) => response.end('secure hello'));
  const plain = http.createServer((_request, response) => response.end('plain hello'));
  secure.listen(0, '127.0.0.1');
  plain.listen(0, '127.0.0.1');
  await Promise.all([once(secure, 'listening'), once(plain, 'listening')]);
  target = `127.0.0.1:${(secure.address() as AddressInfo).port}`;
  plainTarget = `127.0.0.1:${(plain.address() as AddressInfo).port}`;
  return () => {
    for (const server of [secure, plain]) {
      server.close();
      server.closeAllConnections();
    }
    pki.remove();
  };
});

/** GET https://<target>/ through `proxyUri` with undici's ProxyAgent, trusting the test CA. */
async function getThrough(proxyUri: string): Promise<{ status: number; body: string }> {
  const agent = new ProxyAgent({ uri: proxyUri, requestTls: { ca: ca.certPem } });
  try {
    const response = await request(`https://${target}/`, { dispatcher: agent });
    return { status: response.statusCode, body: await response.body.text() };
  } finally {
    await agent.close();
  }
}

describe('the forward proxy', () => {
  it('tunnels undici ProxyAgent requests to a local https server and counts the tunnel', async () => {
    const proxy = await startForwardProxy();
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(await getThrough(proxy.url)).toEqual({ status: 200, body: 'secure hello' });
    expect(await proxy.tunnels()).toEqual({ [target]: 1 });
    expect(await proxy.plainRequests()).toBe(0);
    expect(await proxy.authRefusals()).toBe(0);
    expect(await proxy.lastProxyAuthorizationSeen()).toBe(false);
  });

  it('with credentials: tunnels for the right ones, answers 407 to wrong or missing ones and counts them', async () => {
    const proxy = await startForwardProxy({ username: 'egress', password: 'p@ss:word' });
    expect(proxy.url).not.toContain('egress');
    const withCredentials = (user: string, password: string) => {
      const url = new URL(proxy.url);
      url.username = user;
      url.password = password;
      return url.href;
    };
    await expect(getThrough(proxy.url)).rejects.toThrow(/407/);
    expect(await proxy.lastProxyAuthorizationSeen()).toBe(false);
    await expect(getThrough(withCredentials('egress', 'wrong'))).rejects.toThrow(/407/);
    await expect(getThrough(withCredentials('other', 'p@ss:word'))).rejects.toThrow(/407/);
    expect(await proxy.authRefusals()).toBe(3);
    expect(await proxy.tunnels()).toEqual({});
    expect(await proxy.lastProxyAuthorizationSeen()).toBe(true);

    expect(await getThrough(withCredentials('egress', 'p@ss:word'))).toEqual({ status: 200, body: 'secure hello' });
    expect(await proxy.tunnels()).toEqual({ [target]: 1 });
    expect(await proxy.authRefusals()).toBe(3);
  });

  it('forwards and counts absolute-form requests, and refuses targets beyond loopback', async () => {
    const proxy = await startForwardProxy();
    const answer = await rawProxyRequest(proxy.port, `http://${plainTarget}/`);
    expect(answer).toEqual({ status: 200, body: 'plain hello' });
    expect(await proxy.plainRequests()).toBe(1);
    expect((await rawProxyRequest(proxy.port, 'http://192.0.2.1/')).status).toBe(403);
    expect((await rawProxyRequest(proxy.port, '/not-absolute')).status).toBe(400);
    const agent = new ProxyAgent({ uri: proxy.url });
    onTestFinished(() => agent.close());
    await expect(request('https://192.0.2.1/', { dispatcher: agent })).rejects.toThrow(/403/);
    expect(await proxy.plainRequests()).toBe(1);
    expect(await proxy.tunnels()).toEqual({});
  });

  it('does not keep the credentials in its command line', async () => {
    const proxy = await startForwardProxy({ username: 'egress', password: 'cmdline-secret' });
    const argv = readFileSync(`/proc/${proxy.pid}/cmdline`, 'utf8');
    expect(argv).toContain('forward-proxy-process.mjs');
    expect(argv).not.toContain('cmdline-secret');
  });

  it('is gone once stopped, and stop can be called again', async () => {
    const proxy = await startForwardProxy();
    expect(isRunning(proxy.pid)).toBe(true);
    await proxy.stop();
    expect(isRunning(proxy.pid)).toBe(false);
    await proxy.stop();
    await expect(proxy.tunnels()).rejects.toThrow(/exited|channel/i);
  });

  it('exits by itself when the process that started it dies', async () => {
    // A parent that starts the proxy child the way the helper does (fork, IPC), prints its pid, then waits.
    const processFile = fileURLToPath(new URL('../helpers/forward-proxy-process.mjs', import.meta.url));
    const parentScript = `
      import { fork } from 'node:child_process';
      const child = fork(${JSON.stringify(processFile)}, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      child.on('message', (message) => { if (message.type === 'listening') console.log(child.pid); });
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', parentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void parent.kill('SIGKILL'));
    const [line] = (await once(parent.stdout.setEncoding('utf8'), 'data')) as [string];
    const childPid = Number(line.trim());
    expect(isRunning(childPid)).toBe(true);
    parent.kill('SIGKILL');
    await once(parent, 'exit');
    await waitUntil(() => !isRunning(childPid), 10_000);
    expect(isRunning(childPid)).toBe(false);
  });
});

/** Sends one request to the proxy with the given request target (absolute-form or not). */
function rawProxyRequest(proxyPort: number, requestTarget: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port: proxyPort, path: requestTarget, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** Whether a process with this id is alive (a zombie nobody reaped yet counts as gone). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
