import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { apiaxFormat } from './apiax-format.js';
import { collaborateFormat } from './collaborate-format.js';
import { createContext, type ProviderContext } from './context.js';
import { recordRequest, sendReply, textReply } from './http-io.js';
import { resolveOptions } from './options.js';
import { answerApiRequest, splitUrl } from './resource-api.js';
import { answerTokenRequest } from './token-endpoint.js';
import { TokenStore } from './token-store.js';
import type { FakeProvider, FakeProviderOptions, ProviderKind } from './types.js';
import { oauth2Format } from './oauth2-format.js';
import { v3Format } from './v3-format.js';
import type { WireFormatFactory } from './wire-format.js';

const FORMATS: Readonly<Record<ProviderKind, WireFormatFactory>> = {
  collaborate: collaborateFormat,
  apiax: apiaxFormat,
  v3: v3Format,
  oauth2: oauth2Format,
};

/** Start a real HTTP (or, with `tls`, HTTPS) double of one upstream OAuth provider on 127.0.0.1, on a free port. */
export async function startFakeProvider(options: FakeProviderOptions): Promise<FakeProvider> {
  // The transport is this file's business; resolveOptions checks the provider's behaviour options.
  const { tls, ...behaviour } = options;
  const resolved = resolveOptions(behaviour);
  const format = FORMATS[resolved.kind](resolved);
  const store = new TokenStore({
    kind: resolved.kind,
    accessLifetimeSeconds: resolved.accessLifetimeSeconds,
    refreshLifetimeSeconds: resolved.refreshLifetimeSeconds,
    rotate: resolved.rotate,
    killSessionOnReuse: resolved.killSessionOnReuse,
    refreshExpiry: resolved.kind === 'collaborate' ? 'per-token' : 'session',
    authorizationCodes: resolved.authorizationCodes,
  });
  const ctx = createContext(resolved, format, store);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    route(ctx, req, res).catch(() => {
      // Client went away mid-body, or a custom handler threw: nothing sensible left to send.
      if (!res.headersSent) sendReply(res, textReply(500, 'Internal Server Error'));
      else res.destroy();
    });
  };
  // With requestCert the server asks for a client certificate signed by `ca` and refuses the handshake without one.
  const server: Server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca && { ca: tls.ca }),
          requestCert: Boolean(tls.requestCert),
          rejectUnauthorized: Boolean(tls.requestCert),
        },
        handle,
      )
    : createServer(handle);
  const origin = await listen(server, tls ? 'https' : 'http');
  return buildProvider(ctx, server, origin);
}

async function route(ctx: ProviderContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path } = splitUrl(req.url ?? '');
  const { tokenPaths, apiBasePath } = ctx.format;
  if (tokenPaths.includes(path)) {
    const reply = await answerTokenRequest(ctx, await recordRequest(req), path);
    // No reply: the request is dropped unanswered, as by a gateway that lost it.
    if (reply === null) res.destroy();
    else sendReply(res, reply);
    return;
  }
  if (path === apiBasePath || path.startsWith(`${apiBasePath}/`)) {
    answerApiRequest(ctx, await recordRequest(req), res);
    return;
  }
  req.resume();
  sendReply(res, textReply(404, 'Not Found'));
}

function listen(server: Server, scheme: 'http' | 'https'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve(`${scheme}://127.0.0.1:${port}`);
    });
  });
}

function buildProvider(ctx: ProviderContext, server: Server, origin: string): FakeProvider {
  const { controls, format, store } = ctx;
  let closing: Promise<void> | null = null;
  return {
    kind: ctx.options.kind,
    origin,
    tokenUrl: `${origin}${format.tokenPaths[0] ?? ''}`,
    apiBaseUrl: `${origin}${format.apiBasePath}`,
    counters: ctx.counters,
    clientCounters: ctx.clientCounters,
    apiRequests: ctx.apiRequests,
    tokenRequests: ctx.tokenRequests,
    issuedTokens: store.issued,
    issueRefreshToken: () => store.seedRefreshToken(),
    expireAccessTokens: () => store.expireAllAccessTokens(),
    failNextTokenCalls(count, status, body, headers = {}) {
      controls.failures = { remaining: count, status, body, headers };
    },
    holdTokenRequests(onArrival) {
      ctx.gate.hold(onArrival);
      return {
        arrivals: () => ctx.gate.arrivals(),
        waitForArrivals: (count, timeoutMs = 10_000) => ctx.gate.waitForArrivals(count, timeoutMs),
        release: () => ctx.gate.open('process'),
        discard: () => ctx.gate.open('discard'),
      };
    },
    timesPresented: (refreshToken) => ctx.presentations.get(refreshToken) ?? 0,
    setTokenDelay(ms) {
      controls.tokenDelayMs = ms;
    },
    setApiBehaviour(b) {
      controls.apiBehaviour = b;
    },
    setApiHandler(h) {
      controls.apiHandler = h;
    },
    close() {
      closing ??= closeServer(ctx, server);
      return closing;
    },
  };
}

/** Quick and idempotent: ends delayed answers, then drops every socket, idle or busy. */
function closeServer(ctx: ProviderContext, server: Server): Promise<void> {
  ctx.stopSleeping();
  ctx.gate.open('discard');
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}
