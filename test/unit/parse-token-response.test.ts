import { describe, expect, it } from 'vitest';
import { expiryFrom, parseBody, readTokenResponse, type TokenResponse } from '../../src/tokens/providers/parse-token-response.js';

const SENT_AT = 1_700_000_000_000;

/** Parses a raw token endpoint body the way the OAuth2 client does: parse, then read the token fields. */
function read(text: string): TokenResponse | undefined {
  const body = parseBody(text);
  return body ? readTokenResponse(body, SENT_AT) : undefined;
}

describe('parseBody + readTokenResponse', () => {
  it('reads a Keycloak (Apiax) JSON response', () => {
    const text = JSON.stringify({
      access_token: 'at-1',
      expires_in: 1800,
      refresh_expires_in: 1209600,
      refresh_token: 'rt-1',
      token_type: 'Bearer',
      'not-before-policy': 0,
      session_state: 's',
      scope: 'profile email',
    });
    expect(read(text)).toEqual({
      accessToken: 'at-1',
      accessTokenExpiresAt: SENT_AT + 1800 * 1000,
      refreshToken: 'rt-1',
      refreshTokenExpiresAt: SENT_AT + 1209600 * 1000,
      tokenType: 'Bearer',
    });
  });

  it('reads the documented Collaborate XML <TokenResponse>, with a string expires_in and an XML declaration', () => {
    const text =
      '<?xml version="1.0" encoding="UTF-8"?>\n<TokenResponse><access_token>at-xml</access_token><expires_in>18000</expires_in>' +
      '<refresh_token>rt-xml</refresh_token><token_type>bearer</token_type><useremail>user@x.com</useremail>' +
      '<refresh_token_expires_in>31536000</refresh_token_expires_in></TokenResponse>';
    expect(read(text)).toEqual({
      accessToken: 'at-xml',
      accessTokenExpiresAt: SENT_AT + 18000 * 1000,
      refreshToken: 'rt-xml',
      refreshTokenExpiresAt: SENT_AT + 31536000 * 1000,
      tokenType: 'bearer',
    });
  });

  it('keeps XML token values as text (no number coercion, entities decoded)', () => {
    const result = read(
      '<TokenResponse><access_token>00123</access_token><refresh_token>a&amp;b</refresh_token><expires_in>60</expires_in></TokenResponse>',
    );
    expect(result?.accessToken).toBe('00123');
    expect(result?.refreshToken).toBe('a&b');
  });

  it('is content-agnostic: the same bytes parse the same way whatever they are labelled (no content-type input at all)', () => {
    // The parser takes only text: a JSON body served as text/xml or text/html, or XML served as JSON, still parses.
    const json = '  \r\n{"access_token":"at-j","expires_in":"3600","refresh_token":"rt-j"}\n';
    const xml = '\n  <TokenResponse><access_token>at-x</access_token><expires_in>3600</expires_in></TokenResponse>  ';
    expect(read(json)?.accessToken).toBe('at-j');
    expect(read(json)?.accessTokenExpiresAt).toBe(SENT_AT + 3_600_000);
    expect(read(xml)?.accessToken).toBe('at-x');
    expect(read(xml)?.refreshToken).toBeUndefined();
  });

  it('unwraps the v3 decoupled-flow envelope {"group_header":…,"response":{…}}', () => {
    const text = JSON.stringify({
      group_header: { message_identification: 'x', creation_date_time: '2024-01-01T00:00:00Z', http_code: 200 },
      response: { access_token: 'at-v3', expires_in: 3600, token_type: 'Bearer', refresh_token: 'rt-v3' },
    });
    expect(read(text)).toMatchObject({
      accessToken: 'at-v3',
      refreshToken: 'rt-v3',
      accessTokenExpiresAt: SENT_AT + 3_600_000,
      tokenType: 'Bearer',
    });
  });

  it('reads the flat v3 response too, and does not unwrap a `response` field that holds no token', () => {
    expect(read('{"access_token":"flat","expires_in":300,"token_type":"Bearer","refresh_token":"r"}')?.accessToken).toBe('flat');
    expect(read('{"access_token":"outer","response":{"status":"ok"}}')?.accessToken).toBe('outer');
  });

  it('gives undefined when there is no access token', () => {
    expect(read('{"refresh_token":"rt","expires_in":60}')).toBeUndefined();
    expect(read('{"access_token":"","expires_in":60}')).toBeUndefined();
    expect(read('{"access_token":12345}')).toBeUndefined();
    expect(read('{"group_header":{},"response":{"refresh_token":"x"}}')).toBeUndefined();
    expect(read('<TokenResponse><refresh_token>x</refresh_token></TokenResponse>')).toBeUndefined();
    expect(read('{"error":"invalid_grant"}')).toBeUndefined();
  });

  it('gives undefined for bodies that are neither JSON objects nor XML', () => {
    expect(parseBody('')).toBeUndefined();
    expect(parseBody('access_token=at&expires_in=60')).toBeUndefined();
    expect(parseBody('{not json')).toBeUndefined();
    expect(parseBody('[{"access_token":"a"}]')).toBeUndefined();
    expect(parseBody('null')).toBeUndefined();
    expect(parseBody('<html><body>Bad Gateway</body></html>')?.access_token).toBeUndefined();
  });

  it('ignores a refresh token that is empty or not a string, and a token_type that is not a string', () => {
    const result = read('{"access_token":"a","refresh_token":"","token_type":7}');
    expect(result?.refreshToken).toBeUndefined();
    expect(result?.tokenType).toBeUndefined();
    expect(read('{"access_token":"a","refresh_token":{"x":1}}')?.refreshToken).toBeUndefined();
  });

  it('treats refresh_expires_in 0 as "no fixed expiry", not as expired', () => {
    const result = read('{"access_token":"a","expires_in":1800,"refresh_token":"r","refresh_expires_in":0}');
    expect(result?.refreshToken).toBe('r');
    expect(result?.refreshTokenExpiresAt).toBeUndefined();
  });

  it('prefers refresh_token_expires_in (Collaborate) over refresh_expires_in (Keycloak)', () => {
    expect(read('{"access_token":"a","refresh_token_expires_in":100,"refresh_expires_in":200}')?.refreshTokenExpiresAt).toBe(
      SENT_AT + 100_000,
    );
  });

  it('gives an undefined access token expiry when expires_in is missing', () => {
    expect(read('{"access_token":"a"}')?.accessTokenExpiresAt).toBeUndefined();
  });
});

describe('expiryFrom', () => {
  it('reads seconds as a number or a numeric string, counted from the moment the request was sent', () => {
    expect(expiryFrom(1800, SENT_AT)).toBe(SENT_AT + 1_800_000);
    expect(expiryFrom('18000', SENT_AT)).toBe(SENT_AT + 18_000_000);
    expect(expiryFrom(' 60 ', SENT_AT)).toBe(SENT_AT + 60_000);
    expect(expiryFrom(2419200, SENT_AT)).toBe(SENT_AT + 2_419_200_000); // Collaborate's one month
    expect(expiryFrom(0.5, SENT_AT)).toBe(SENT_AT + 500);
  });

  it('reads values above 10^9 as an epoch in seconds and above 10^12 as an epoch in milliseconds', () => {
    expect(expiryFrom(1_700_001_800, SENT_AT)).toBe(1_700_001_800_000);
    expect(expiryFrom('1700001800', SENT_AT)).toBe(1_700_001_800_000);
    expect(expiryFrom(1_700_001_800_123, SENT_AT)).toBe(1_700_001_800_123);
    expect(expiryFrom('1700001800123', SENT_AT)).toBe(1_700_001_800_123);
    // Just below the thresholds is still a duration.
    expect(expiryFrom(999_999_999, SENT_AT)).toBe(SENT_AT + 999_999_999_000);
  });

  it('gives undefined for 0, negative, missing and garbage values', () => {
    for (const value of [0, '0', -5, '-5', undefined, null, '', '   ', 'soon', '12abc', NaN, Infinity, {}, [], true]) {
      expect(expiryFrom(value, SENT_AT), JSON.stringify(value) ?? String(value)).toBeUndefined();
    }
  });
});
