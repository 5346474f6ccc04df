import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenEndpointError } from '../../src/errors.js';
import { classifyTokenError } from '../../src/tokens/providers/classify-token-error.js';
import { presetVerdicts as presets } from '../../src/tokens/providers/verdicts.js';

const REFRESH_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.refresh-token-Secret-4f1c';
const CLIENT_SECRET = 'client-secret-9QzK';
const hide = [REFRESH_TOKEN, CLIENT_SECRET];

function keycloak(description: string): string {
  return JSON.stringify({ error: 'invalid_grant', error_description: description });
}

function v3Envelope(httpCode: number, code: string, description: string): string {
  return JSON.stringify({
    group_header: { message_identification: 'm-1', creation_date_time: '2024-01-01T00:00:00Z', http_code: httpCode },
    error: { request_id: 'r-1', failures: [{ code, description }] },
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('classifyTokenError: dead credentials', () => {
  for (const description of [
    'Token is not active',
    'Session not active',
    'Stale token',
    'Maximum allowed refresh token reuse exceeded',
    'Invalid refresh token',
  ]) {
    it(`Keycloak 400 invalid_grant "${description}" → credential_dead`, () => {
      const error = classifyTokenError(400, keycloak(description), undefined, hide);
      expect(error).toBeInstanceOf(TokenEndpointError);
      expect(error.kind).toBe('credential_dead');
      expect(error.httpStatus).toBe(400);
      expect(error.providerCode).toBe('invalid_grant');
      expect(error.message).toBe(`token endpoint answered HTTP 400 (invalid_grant: ${description})`);
    });
  }

  it('invalid_grant in XML (a Collaborate instance answering in its own format) → credential_dead', () => {
    const error = classifyTokenError(
      400,
      '<OAuthError><error>invalid_grant</error><error_description>expired</error_description></OAuthError>',
      undefined,
      hide,
    );
    expect(error.kind).toBe('credential_dead');
    expect(error.providerCode).toBe('invalid_grant');
  });

  it('invalid_grant with 401 is still a dead credential, not a client problem', () => {
    expect(classifyTokenError(401, keycloak('Invalid refresh token'), undefined, hide).kind).toBe('credential_dead');
  });

  it('v3 400 envelope ("Oauth code expired") → credential_dead with the failure code (the v3 preset\'s documented signal)', () => {
    const error = classifyTokenError(400, v3Envelope(400, 'error.oauth.code.expired', 'Oauth code expired'), undefined, hide, presets.v3);
    expect(error.kind).toBe('credential_dead');
    expect(error.providerCode).toBe('error.oauth.code.expired');
    expect(error.message).toContain('Oauth code expired');
  });

  it('the same v3 envelope without the v3 preset is no verdict (another provider could send anything)', () => {
    expect(classifyTokenError(400, v3Envelope(400, 'error.oauth.code.expired', 'Oauth code expired'), undefined, hide).kind).toBe(
      'transient',
    );
  });

  it('a v3 request-validation envelope is no verdict on the token', () => {
    expect(classifyTokenError(400, v3Envelope(400, 'error.validation', 'grant_type missing'), undefined, hide, presets.v3).kind).toBe(
      'transient',
    );
  });
});

describe('classifyTokenError: firewalls, redirects and routing errors are outages, not verdicts', () => {
  const cases: [number, string][] = [
    [400, 'Bad Request'],
    [403, '<html><body><h1>Access Denied</h1>Request blocked by the web application firewall</body></html>'],
    [403, ''],
    [302, ''],
    [301, '<a href="https://maintenance.example/">Moved</a>'],
    [404, 'Not Found'],
    [405, 'Method Not Allowed'],
    [409, 'Conflict'],
    [401, '<html>Sign in</html>'],
  ];
  for (const [status, body] of cases) {
    it(`HTTP ${status} ${body ? JSON.stringify(body.slice(0, 30)) : '(empty)'} → transient, refresh token not spent`, () => {
      const error = classifyTokenError(status, body, undefined, hide, presets.collaborate);
      expect(error.kind).toBe('transient');
      expect(error.grantMayBeSpent).toBe(false);
    });
  }

  it('a gateway 500/502/504 may have passed the grant on: the refresh token may be spent', () => {
    for (const status of [500, 502, 504])
      expect(classifyTokenError(status, '<html>Bad Gateway</html>', undefined, hide).grantMayBeSpent).toBe(true);
    for (const status of [503, 429]) expect(classifyTokenError(status, '', undefined, hide).grantMayBeSpent).toBe(false);
  });

  it('OAuth codes that say nothing about the refresh token (invalid_request, invalid_scope, unsupported_grant_type) → transient', () => {
    for (const code of ['invalid_request', 'invalid_scope', 'unsupported_grant_type', 'temporarily_unavailable']) {
      expect(classifyTokenError(400, JSON.stringify({ error: code }), undefined, hide).kind, code).toBe('transient');
    }
  });
});

describe('classifyTokenError: rejected clients', () => {
  it('Keycloak 401 invalid_client → client_rejected', () => {
    const error = classifyTokenError(
      401,
      JSON.stringify({ error: 'invalid_client', error_description: 'Invalid client credentials' }),
      undefined,
      hide,
    );
    expect(error.kind).toBe('client_rejected');
    expect(error.providerCode).toBe('invalid_client');
  });

  it('400 with unauthorized_client → client_rejected', () => {
    expect(classifyTokenError(400, '{"error":"unauthorized_client"}', undefined, hide).kind).toBe('client_rejected');
  });

  it('IBM gateway 401 body {"httpCode":"401","httpMessage":"Unauthorized",…} with the v3 preset → client_rejected', () => {
    const body = JSON.stringify({ httpCode: '401', httpMessage: 'Unauthorized', moreInformation: 'Client id not registered.' });
    expect(classifyTokenError(401, body, undefined, hide).kind).toBe('transient');
    const error = classifyTokenError(401, body, undefined, hide, presets.v3);
    expect(error.kind).toBe('client_rejected');
    expect(error.providerCode).toBe('Unauthorized');
    expect(error.message).toBe('token endpoint answered HTTP 401 (Unauthorized: Client id not registered.)');
  });

  it('v3 401 envelope (error.apikey.missing) with the v3 preset → client_rejected', () => {
    expect(classifyTokenError(401, v3Envelope(401, 'error.apikey.missing', 'API key missing'), undefined, hide, presets.v3).kind).toBe(
      'client_rejected',
    );
  });
});

describe('classifyTokenError: transient failures', () => {
  for (const status of [408, 429, 500, 502, 503, 504]) {
    it(`${status} → transient`, () => {
      // Even with an invalid_grant body: a proxy or gateway in between may forward anything on a 5xx.
      expect(classifyTokenError(status, keycloak('Token is not active'), undefined, hide).kind).toBe('transient');
      expect(classifyTokenError(status, '<html>oops</html>', undefined, hide).kind).toBe('transient');
    });
  }

  it('parses Retry-After in seconds', () => {
    expect(classifyTokenError(429, '', '120', hide).retryAfterMs).toBe(120_000);
    expect(classifyTokenError(503, '', '0', hide).retryAfterMs).toBe(0);
  });

  it('parses Retry-After as an HTTP-date relative to now, and a past date as 0', () => {
    vi.useFakeTimers({ now: Date.parse('2024-05-01T12:00:00Z') });
    expect(classifyTokenError(503, '', 'Wed, 01 May 2024 12:00:30 GMT', hide).retryAfterMs).toBe(30_000);
    expect(classifyTokenError(503, '', 'Wed, 01 May 2024 11:00:00 GMT', hide).retryAfterMs).toBe(0);
  });

  it('ignores a missing or unparseable Retry-After', () => {
    expect(classifyTokenError(429, '', undefined, hide).retryAfterMs).toBeUndefined();
    expect(classifyTokenError(429, '', 'later', hide).retryAfterMs).toBeUndefined();
  });
});

describe('classifyTokenError: messages never leak what we sent', () => {
  it('redacts the refresh token and client secret when the provider echoes them in a JSON description', () => {
    const body = JSON.stringify({
      error: 'invalid_grant',
      error_description: `Refresh token ${REFRESH_TOKEN} for client with secret ${CLIENT_SECRET} is not active`,
    });
    const error = classifyTokenError(400, body, undefined, hide);
    expect(error.kind).toBe('credential_dead');
    expect(error.message).not.toContain(REFRESH_TOKEN);
    expect(error.message).not.toContain(CLIENT_SECRET);
    expect(error.message).toContain('[redacted]');
    expect(JSON.stringify(error)).not.toContain(REFRESH_TOKEN);
    expect(String(error.cause ?? '')).not.toContain(REFRESH_TOKEN);
  });

  it('redacts an echoed token in the error code itself, in XML, and in a v3 envelope', () => {
    for (const body of [
      JSON.stringify({ error: REFRESH_TOKEN }),
      `<error><error>invalid_grant</error><error_description>bad token ${REFRESH_TOKEN}</error_description></error>`,
      v3Envelope(400, 'error.token.invalid', `refresh_token=${REFRESH_TOKEN}`),
      JSON.stringify({ httpCode: '401', httpMessage: 'Unauthorized', moreInformation: `secret ${CLIENT_SECRET} rejected` }),
    ]) {
      const error = classifyTokenError(400, body, undefined, hide);
      expect(error.message, body).not.toContain(REFRESH_TOKEN);
      expect(error.message, body).not.toContain(CLIENT_SECRET);
    }
  });

  it('does not put the raw body into the message when it is not a recognisable error', () => {
    const error = classifyTokenError(502, `<html>upstream said ${REFRESH_TOKEN}</html>`, undefined, hide);
    expect(error.message).toBe('token endpoint answered HTTP 502');
  });

  it('redacts before it shortens: a long echoed refresh token leaks no prefix', () => {
    const longToken = `rt-${'A1b2C3d4'.repeat(40)}`;
    const body = JSON.stringify({ error: 'invalid_grant', error_description: `token ${longToken} is not active` });
    const error = classifyTokenError(400, body, undefined, [longToken]);
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(longToken.slice(0, 24));
  });

  it('keeps provider text short and printable', () => {
    const error = classifyTokenError(
      400,
      JSON.stringify({ error: 'invalid_grant', error_description: `line1\nline2\u0000${'x'.repeat(1000)}` }),
      undefined,
      hide,
    );
    expect(error.message).not.toContain('\n');
    expect(error.message).not.toContain('\u0000');
    expect(error.message.length).toBeLessThan(300);
  });
});
