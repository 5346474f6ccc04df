/**
 * Issue behaviour 1, streaming: bodies flow through the proxy as they are produced, in both directions,
 * with backpressure (a slow reader on one side stalls the writer on the other instead of growing a
 * buffer in the proxy), large bodies arrive byte-exact, and trailers pass through.
 *
 * The proxy runs in this process, so its memory cannot be told apart from the test's. Instead each large
 * transfer stalls its reader and checks how far the writer got ahead: with a streaming proxy that is
 * bounded by socket buffers; a proxy that buffered would let the writer run to the end.
 */
import { createHash } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { digest, patternChunk, startRoutedProxy } from '../helpers/plain-upstream.js';
import { eventually } from '../helpers/start-proxy.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
/** How far a writer may get ahead of a stalled reader: kernel socket buffers on two hops, plus stream buffers. */
const MAX_IN_FLIGHT = 32 * MiB;

/** Distinct chunks, cycled: cheap to produce, and any reordering within the cycle changes the hash. */
const CYCLE = Array.from({ length: 61 }, (_, i) => patternChunk(i, CHUNK));
const chunkAt = (i: number): Buffer => CYCLE[i % CYCLE.length] as Buffer;

function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function get(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => request(url, { agent: false }, resolve).on('error', reject).end());
}

/** Tracks whether a writer is currently waiting for 'drain', and since when. */
class Writer {
  bytes = 0;
  finished = false;
  #blockedSince: number | undefined;

  async write(stream: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (stream.write(chunk)) return;
    this.#blockedSince = Date.now();
    await new Promise((resolve) => stream.once('drain', resolve));
    this.#blockedSince = undefined;
  }

  /** Stalled: waiting for drain for a while, i.e. the reader's side is full all the way back. */
  stalledFor(ms: number): boolean {
    return this.#blockedSince !== undefined && Date.now() - this.#blockedSince >= ms;
  }
}

describe('streaming: bodies flow while they are produced', () => {
  it('delivers the first response chunk before the upstream has sent the last', async () => {
    const last = deferred();
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        void last.promise.then(() => res.end('last'));
      },
    });
    const res = await deadline(get(`${routeUrl}/s`), 5000, 'response head');
    const chunks: string[] = [];
    const first = new Promise<void>((resolve) => res.once('data', () => resolve()));
    res.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    const ended = new Promise((resolve) => res.on('end', resolve));
    await deadline(first, 5000, 'the first chunk while the upstream holds the last');
    expect(chunks.join('')).toBe('first;');
    last.resolve();
    await ended;
    expect(chunks.join('')).toBe('first;last');
  });

  it('delivers the first request chunk upstream before the client has sent the last', async () => {
    const firstArrived = deferred();
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        const parts: string[] = [];
        req.once('data', () => firstArrived.resolve());
        req.on('data', (chunk: Buffer) => parts.push(chunk.toString()));
        req.on('end', () => res.end(parts.join('')));
      },
    });
    const response = new Promise<string>((resolve, reject) => {
      const req = request(`${routeUrl}/u`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        const parts: string[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk.toString()));
        res.on('end', () => resolve(parts.join('')));
      });
      req.on('error', reject);
      req.write('first;');
      void deadline(firstArrived.promise, 5000, 'the first request chunk upstream').then(() => req.end('last'), reject);
    });
    expect(await response).toBe('first;last');
  });
});

describe('streaming: large bodies with backpressure', () => {
  it('uploads 64 MiB chunked without buffering, byte-exact', async () => {
    const total = 64 * MiB;
    const release = deferred();
    let received = 0;
    let stalledAt = 0;
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        const hash = createHash('sha256');
        req.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          received += chunk.length;
          // A slow consumer: stop reading after the first MiB until the test has looked at the writer.
          if (received >= MiB && stalledAt === 0) {
            stalledAt = received;
            req.pause();
            void release.promise.then(() => req.resume());
          }
        });
        req.on('end', () => res.end(JSON.stringify({ length: received, sha256: hash.digest('hex') })));
      },
    });

    const writer = new Writer();
    const sent = createHash('sha256');
    const answer = new Promise<string>((resolve, reject) => {
      const req = request(
        `${routeUrl}/upload`,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (chunk: Buffer) => parts.push(chunk));
          res.on('end', () => resolve(Buffer.concat(parts).toString()));
        },
      );
      req.on('error', reject);
      void (async () => {
        for (let i = 0; writer.bytes < total; i++) {
          sent.update(chunkAt(i));
          await writer.write(req, chunkAt(i));
        }
        writer.finished = true;
        req.end();
      })();
    });

    await eventually(() => writer.finished || (stalledAt > 0 && writer.stalledFor(300)), 8000, 'the upload writer to stall');
    expect(writer.finished).toBe(false);
    expect(writer.bytes - received).toBeLessThan(MAX_IN_FLIGHT);
    release.resolve();
    expect(JSON.parse(await answer)).toEqual({ length: total, sha256: sent.digest('hex') });
  });

  it('downloads 256 MiB without buffering, byte-exact', async () => {
    const total = 256 * MiB;
    const writer = new Writer();
    const produced = createHash('sha256');
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        void (async () => {
          for (let i = 0; writer.bytes < total && !res.destroyed; i++) {
            produced.update(chunkAt(i));
            await writer.write(res, chunkAt(i));
          }
          writer.finished = true;
          res.end();
        })();
      },
    });

    const res = await deadline(get(`${routeUrl}/download`), 5000, 'response head');
    expect(res.headers['content-length']).toBe(String(total));
    // Read one MiB, then stop reading until the upstream writer has stalled.
    const got = createHash('sha256');
    let received = 0;
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        got.update(chunk);
        received += chunk.length;
        if (received < MiB) return;
        res.pause();
        res.off('data', onData);
        resolve();
      };
      res.on('data', onData);
    });
    await eventually(() => writer.finished || writer.stalledFor(300), 8000, 'the download writer to stall');
    expect(writer.finished).toBe(false);
    expect(writer.bytes - received).toBeLessThan(MAX_IN_FLIGHT);
    for await (const chunk of res) {
      got.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    expect(received).toBe(total);
    expect(writer.finished).toBe(true);
    expect(got.digest('hex')).toBe(produced.digest('hex'));
  });

  it('passes response trailers through to a client that takes them (TE: trailers)', async () => {
    const { routeUrl } = await startRoutedProxy({
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-row-count' });
        res.write('row1\n');
        res.write('row2\n');
        res.addTrailers({ 'x-checksum': 'sha256=abc123', 'x-row-count': '2' });
        res.end();
      },
    });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request(`${routeUrl}/t`, { agent: false, headers: { te: 'trailers' } }, resolve)
        .on('error', reject)
        .end();
    });
    const body = await digest(res);
    expect(body.length).toBe(10);
    expect(res.headers.trailer).toBe('x-checksum, x-row-count');
    expect(res.trailers).toEqual({ 'x-checksum': 'sha256=abc123', 'x-row-count': '2' });
  });
});
