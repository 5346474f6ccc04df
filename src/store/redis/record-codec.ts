/**
 * How a TokenRecord is stored in Redis: JSON, or with an encryptionKey AES-256-GCM over that JSON
 * with a random 12-byte nonce per write. Stored as `<version>.<nonce>.<ciphertext+tag>`
 * (base64 parts); the version says what the associated data is:
 *
 *   v2  the full Redis key of the record (key prefix included) and the generation, so a blob moved to
 *       another deployment's prefix, another credential or another generation fails to decrypt.
 *       Every write is v2.
 *   v1  (written before v2) the store key without the prefix and the generation: a blob copied from one
 *       prefix to another under the same encryptionKey decrypted there. Still read, so an upgrade does
 *       not strand the stored refresh token; the record's next write (the next refresh or seed) replaces
 *       it with a v2 blob, since encode never writes v1.
 *
 * Next to the blob the record hash keeps a digest of the record, which the compare-and-set script compares
 * to recognise its own earlier write (a re-run after a lost reply) even though every encryption of the same
 * record differs. With a key the digest is an HMAC under a key derived from encryptionKey, so it does not
 * let anyone with read access to Redis confirm a guessed token.
 */
import { parseTokenRecord } from '../record-schema.js';
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { SidecarError, StoreError } from '../../errors.js';
import type { TokenRecord } from '../token-store.js';
import type { KeyLayout } from './keys.js';

const VERSION = 'v2';
const LEGACY_VERSION = 'v1';
const NONCE_BYTES = 12; // NIST SP 800-38D §8.2: 96-bit IVs for GCM
const TAG_BYTES = 16;
const KEY_CHECK_PLAINTEXT = 'oauth-sidecar encryption key check';
const KEY_CHECK_AAD = 'oauth-sidecar:key-check';
/** The key-check entry proves the key, not a record's place: its format did not change with v2. */
const KEY_CHECK_VERSION = 'v1';

export interface EncodedRecord {
  readonly blob: string;
  readonly digest: string;
}

export interface RecordCodec {
  readonly encrypted: boolean;
  encode(key: string, record: TokenRecord): EncodedRecord;
  /** `generation` is the clear-text generation field stored beside the blob. */
  decode(key: string, generation: string, blob: string): TokenRecord;
  /** The value of the key-check entry written once per prefix when encryption is on. */
  keyCheckValue(): string;
  /** True when `value` (a key-check entry) was written with this encryptionKey. */
  verifyKeyCheck(value: string): boolean;
}

/** `keys` names the Redis key each record is stored under: v2 blobs are bound to it. */
export function createRecordCodec(encryptionKey: Buffer | undefined, keys: Pick<KeyLayout, 'record'>): RecordCodec {
  const digestKey = encryptionKey
    ? Buffer.from(hkdfSync('sha256', encryptionKey, Buffer.alloc(0), 'oauth-sidecar record digest', 32))
    : undefined;

  const digestOf = (key: string, json: string): string =>
    digestKey
      ? createHmac('sha256', digestKey).update(`${key}\n${json}`).digest('base64')
      : createHash('sha256').update(`${key}\n${json}`).digest('base64');

  return {
    encrypted: encryptionKey !== undefined,
    encode(key, record) {
      const json = JSON.stringify(record);
      const blob = encryptionKey
        ? seal(encryptionKey, VERSION, json, recordAssociatedData(keys.record(key), String(record.generation)))
        : json;
      return { blob, digest: digestOf(key, json) };
    },
    decode(key, generation, blob) {
      let json: string;
      const version = /^(v\d+)\./.exec(blob)?.[1];
      if (version !== undefined) {
        if (!encryptionKey) throw new StoreError(`the token record for ${key} is encrypted but no encryptionKey is set`);
        if (version !== VERSION && version !== LEGACY_VERSION) {
          throw new StoreError(
            `the token record for ${key} is encrypted in format ${version}, which this oauth-sidecar does not know (a newer version wrote it); it is left untouched`,
          );
        }
        const associatedData = version === VERSION ? recordAssociatedData(keys.record(key), generation) : `${key}:${generation}`;
        const opened = open(encryptionKey, version, blob, associatedData);
        if (opened === undefined) throw new StoreError(`cannot decrypt the token record for ${key}: wrong encryptionKey or tampered data`);
        json = opened;
      } else {
        // Accepting clear text here would let anyone who can write to Redis plant a token record.
        if (encryptionKey)
          throw new StoreError(
            `the token record for ${key} is stored in clear text but encryptionKey is set; write it again (seed --force)`,
          );
        json = blob;
      }
      const record = parseRecord(json);
      if (!record || String(record.generation) !== generation) {
        throw new StoreError(`the token record for ${key} in redis is not a valid oauth-sidecar record; it is left untouched`);
      }
      return record;
    },
    keyCheckValue() {
      if (!encryptionKey) throw new SidecarError('INTERNAL', 'keyCheckValue needs an encryptionKey');
      return seal(encryptionKey, KEY_CHECK_VERSION, KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD);
    },
    verifyKeyCheck(value) {
      return encryptionKey !== undefined && open(encryptionKey, KEY_CHECK_VERSION, value, KEY_CHECK_AAD) === KEY_CHECK_PLAINTEXT;
    },
  };
}

/**
 * v2 associated data: the Redis key as stored (prefix and hash tag included) and the generation, as a JSON
 * array so that no two (key, generation) pairs give the same bytes whatever characters the key holds.
 */
function recordAssociatedData(redisKey: string, generation: string): string {
  return JSON.stringify([redisKey, generation]);
}

function seal(key: Buffer, version: string, plaintext: string, associatedData: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${version}.${nonce.toString('base64')}.${sealed.toString('base64')}`;
}

/** The plaintext, or undefined when the blob is malformed or does not authenticate. */
function open(key: Buffer, expectedVersion: string, blob: string, associatedData: string): string | undefined {
  const [version, nonceText, sealedText, extra] = blob.split('.');
  if (version !== expectedVersion || nonceText === undefined || sealedText === undefined || extra !== undefined) return undefined;
  const nonce = Buffer.from(nonceText, 'base64');
  const sealed = Buffer.from(sealedText, 'base64');
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function parseRecord(json: string): TokenRecord | undefined {
  try {
    return parseTokenRecord(JSON.parse(json));
  } catch {
    return undefined;
  }
}
