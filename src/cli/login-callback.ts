/**
 * The loopback listener that receives the browser's redirect for `login`: it takes the first redirect that
 * belongs to this login (its state, or for Collaborate, which never echoes state, one PKCE then binds) and
 * answers every other request without ending the wait, so a forged callback cannot cut a login short.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Endpoint } from '../net/endpoint.js';
import { listen } from '../net/listen.js';
import { CommandError } from '../errors.js';

export interface CallbackExpectation {
  readonly path: string;
  readonly state: string;
  readonly stateRequired: boolean;
  readonly timeoutMs: number;
  /** Keeps the accepted redirect's response open, to be answered once the code has been exchanged. */
  readonly hold: (res: ServerResponse) => void;
  /** Tells the operator that a request to the callback was ignored, and why. */
  readonly ignored: (reason: string) => void;
}

/** What one request to the callback path is: this login's code, the provider's refusal, or not ours at all. */
type CallbackOutcome = { readonly code: string } | { readonly refused: string } | { readonly ignore: string };

/**
 * Resolves with the code of the first redirect that belongs to this login, or rejects with the provider's
 * refusal or when none came in time. A request that does not belong to it (a wrong or missing state, no code
 * and no error) is answered 400 and changes nothing: a forged or stray callback cannot end the login that
 * the real redirect is still on its way to. After the first accepted redirect the listener takes no other.
 */
export function waitForCallback(server: Server, expected: CallbackExpectation): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let done = false;
    const ignored: string[] = [];
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      finish();
      const last = ignored.at(-1);
      const note = last
        ? ` (ignored ${ignored.length} request${ignored.length === 1 ? '' : 's'} to the callback, the last because ${last})`
        : '';
      reject(
        new CommandError(
          'LOGIN_NO_REDIRECT',
          `no redirect arrived within ${expected.timeoutMs / 1000} s${note}; nothing was stored, run login again`,
        ),
      );
    }, expected.timeoutMs);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://callback.invalid');
      if (req.method !== 'GET' || url.pathname !== expected.path) return page(res, 404, 'Not found.');
      if (done) return page(res, 409, 'This login has already received its redirect; you can close this window.');
      const outcome = readCallback(url.searchParams, expected);
      if ('ignore' in outcome) {
        ignored.push(outcome.ignore);
        expected.ignored(outcome.ignore);
        return page(res, 400, `This redirect does not belong to the login that is waiting (${outcome.ignore}); it was ignored.`);
      }
      finish();
      if ('refused' in outcome) {
        page(res, 400, `Login failed: ${outcome.refused}. Nothing was stored; run the login command again.`);
        reject(new CommandError('LOGIN_REDIRECT_REFUSED', outcome.refused));
        return;
      }
      expected.hold(res);
      resolve(outcome.code);
    });
  });
}

/**
 * RFC 6749 §10.12: a redirect is this login's only when it carries this login's state. A wrong state is never
 * accepted. A missing one is accepted only where the provider never echoes state (Collaborate): there the
 * PKCE verifier, which never leaves this process, binds the code to this login, since a code obtained by
 * another authorize request cannot be exchanged with it (as long as the provider checks PKCE).
 */
function readCallback(params: URLSearchParams, expected: CallbackExpectation): CallbackOutcome {
  const state = params.get('state');
  if (state !== null && state !== expected.state) return { ignore: 'its state does not match this login (possible forgery)' };
  if (state === null && expected.stateRequired)
    return { ignore: 'it carries no state, but this provider always returns it (possible forgery)' };
  const error = params.get('error');
  if (error !== null) {
    const description = params.get('error_description');
    return { refused: `the provider refused the authorization: ${printable(error)}${description ? ` (${printable(description)})` : ''}` };
  }
  const code = params.get('code');
  if (!code) return { ignore: 'it carries neither a code nor an error' };
  return { code };
}

/** Provider text echoed to the terminal: printable ASCII only, bounded. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

export function page(res: ServerResponse, status: number, message: string): void {
  const body = `<!doctype html><meta charset="utf-8"><title>oauth-sidecar login</title><p>${escapeHtml(message)}</p>\n`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // The page's own URL holds the code: keep it out of Referer headers and block any active content.
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'",
    connection: 'close',
  });
  res.end(body);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** The callback listener; a port in use is a clear error, not a stack trace. */
export async function listenForCallback(server: Server, endpoint: Endpoint): Promise<void> {
  try {
    await listen(server, endpoint);
  } catch (cause) {
    const error = cause as NodeJS.ErrnoException;
    const { host, port } = endpoint;
    throw new CommandError(
      'LOGIN_SETUP_FAILED',
      `cannot listen for the login callback on ${host}:${port} (${error.code ?? error.message})`,
    );
  }
}
