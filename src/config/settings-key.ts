/**
 * A fingerprint of a settings object, to tell after a config reload whether an upstream (or its auth
 * section) changed. Secrets count by their value, so a rotated client secret is a change, but only
 * their SHA-256 enters the text, and the text itself is hashed: the key can be logged or compared
 * without revealing anything.
 */
import { createHash } from 'node:crypto';
import { Secret } from './secret.js';

export function settingsKey(settings: unknown): string {
  const text = JSON.stringify(settings, function (this: Record<string, unknown>, key: string, value: unknown) {
    // toJSON has already turned a Secret into "[secret]" here; the holder still has the Secret itself.
    const original = this[key];
    if (original instanceof Secret) return `secret:${sha256(original.reveal())}`;
    if (value instanceof Set) return [...(value as Set<unknown>)].sort();
    // Buffer.toJSON runs before the replacer sees it: { type: 'Buffer', data } is stable as it is.
    return value;
  });
  return sha256(text);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
