/** settingsKey decides whether a reload keeps an upstream's token manager: secrets count, but never show. */
import { describe, expect, it } from 'vitest';
import { settingsKey } from '../../src/config/settings-key.js';
import { Secret } from '../../src/config/secret.js';

describe('settingsKey', () => {
  it('is equal for equal settings, with Sets in any order', () => {
    expect(settingsKey({ a: 1, s: new Set([401, 403]), secret: new Secret('x') })).toBe(
      settingsKey({ a: 1, s: new Set([403, 401]), secret: new Secret('x') }),
    );
  });

  it('changes when a secret value changes, though every Secret prints as [secret]', () => {
    expect(settingsKey({ clientSecret: new Secret('old') })).not.toBe(settingsKey({ clientSecret: new Secret('new') }));
    expect(settingsKey({ clientSecret: new Secret('old') })).not.toBe(settingsKey({ clientSecret: '[secret]' }));
  });

  it('is a SHA-256 digest that contains no secret', () => {
    const key = settingsKey({ clientSecret: new Secret('hunter2') });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
  });
});
