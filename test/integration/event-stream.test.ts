/**
 * Server-Sent Events through the proxy: each event reaches the client before the upstream sends the
 * next (nothing buffered), and a healthy stream that lasts many times the proxy's body idle timeout is not
 * cut, because the timeout bounds silence, not length.
 */
import { request, type IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startRoutedProxy } from '../helpers/plain-upstream.js';

const EVENTS = 12;
const GAP_MS = 150;
const BODY_IDLE_TIMEOUT_MS = 400;

describe('server-sent events', () => {
  it('delivers every event as it is sent, over a stream far longer than the idle timeout', async () => {
    let clientSaw = 0;
    const waitForClient = async (count: number) => {
      while (clientSaw < count) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const { routeUrl } = await startRoutedProxy({
      extra: `bodyIdleTimeoutMs: ${BODY_IDLE_TIMEOUT_MS}\nheadersTimeoutMs: ${BODY_IDLE_TIMEOUT_MS}`,
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        void (async () => {
          for (let i = 1; i <= EVENTS; i++) {
            res.write(`id: ${i}\ndata: event ${i}\n\n`);
            // The next event only after the client has this one: a buffering proxy would hang here.
            await waitForClient(i);
            await new Promise((resolve) => setTimeout(resolve, GAP_MS));
          }
          res.end();
        })();
      },
    });

    const startedAt = Date.now();
    const response = await new Promise<IncomingMessage>((resolve, reject) =>
      request(`${routeUrl}/events`, { agent: false, headers: { accept: 'text/event-stream' } }, resolve)
        .on('error', reject)
        .end(),
    );
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/event-stream');
    let text = '';
    for await (const chunk of response) {
      text += (chunk as Buffer).toString();
      clientSaw = (text.match(/\n\n/g) ?? []).length;
    }
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(ids).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
    expect(response.complete).toBe(true);
    // The stream outlived the idle timeout several times over (12 gaps of 150 ms against 400 ms).
    expect(Date.now() - startedAt).toBeGreaterThan(3 * BODY_IDLE_TIMEOUT_MS);
  });
});
