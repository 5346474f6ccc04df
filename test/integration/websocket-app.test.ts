/**
 * WebSocket through the whole app (createApp, as `serve` runs it): the upgrade is wired to the route,
 * messages flow both ways with the bearer on the handshake, a reload leaves an open connection alone, and
 * stopping the app (SIGTERM) closes every connection with 1001 on both sides. The handler's own cases
 * (fragments, ping/pong, 1 MiB, replays, limits) are in websocket.test.ts.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { parseConfig } from '../../src/config/load.js';
import { startFakeProvider } from '../helpers/fake-provider.js';
import { eventually, startProxy } from '../helpers/start-proxy.js';

async function echoUpstream(): Promise<{ target: string; authorizations: string[]; closeCodes: number[] }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const authorizations: string[] = [];
  const closeCodes: number[] = [];
  server.on('connection', (socket, req) => {
    authorizations.push(req.headers.authorization ?? '');
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('close', (code) => closeCodes.push(code));
  });
  return { target: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, authorizations, closeCodes };
}

async function open(url: string): Promise<{ socket: WebSocket; closed: Promise<number> }> {
  const socket = new WebSocket(url, { headers: { authorization: 'Bearer from-the-client' } });
  onTestFinished(() => socket.terminate());
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await once(socket, 'open');
  return { socket, closed };
}

async function echo(socket: WebSocket, text: string): Promise<string> {
  socket.send(text);
  const [data] = (await once(socket, 'message')) as [Buffer];
  return data.toString();
}

describe('websocket through the app', () => {
  it('forwards with the bearer, survives a reload, and closes with 1001 on both sides when the app stops', async () => {
    const provider = await startFakeProvider({ kind: 'apiax' });
    onTestFinished(() => provider.close());
    const upstream = await echoUpstream();
    const seed = provider.issueRefreshToken();
    const yaml = (extra: string) =>
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nstore: { type: memory }\nupstreams:\n` +
      `  chat:\n    target: ${upstream.target}\n${extra}    auth: { preset: apiax, tokenUrl: ${provider.tokenUrl}, refreshToken: ${seed} }\n`;
    const proxy = await startProxy(yaml(''), { manualStop: true });
    onTestFinished(() => proxy.stop());
    const wsUrl = proxy.url.replace(/^http/, 'ws');

    const { socket, closed } = await open(`${wsUrl}/chat/live?room=1`);
    expect(await echo(socket, 'hello')).toBe('hello');
    expect(upstream.authorizations).toHaveLength(1);
    expect(upstream.authorizations[0]).toMatch(/^Bearer /);
    expect(upstream.authorizations[0]).not.toBe('Bearer from-the-client');
    expect(provider.issuedTokens).toContain(upstream.authorizations[0]!.slice('Bearer '.length));

    // A reload that changes the route: the open connection is not the route's to drop.
    await proxy.app.reload(parseConfig(yaml('    websocket: { idleTimeoutMs: 60000 }\n')));
    expect(await echo(socket, 'after the reload')).toBe('after the reload');
    const second = await open(`${wsUrl}/chat/live`);
    expect(await echo(second.socket, 'new route')).toBe('new route');

    await proxy.stop();
    expect(await closed).toBe(1001);
    expect(await second.closed).toBe(1001);
    await eventually(() => upstream.closeCodes.length === 2, 5_000, 'both upstream sockets closed');
    expect(upstream.closeCodes).toEqual([1001, 1001]);
  });
});
