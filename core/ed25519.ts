/**
 * Ed25519 public keys in the two forms integrators handle: PEM, or base64 of the raw 32
 * bytes (the form `info` publishes). One parser for decision keys, command keys and model
 * signing keys; each caller names the stable error code its users see.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type ErrorCode, KioskError } from './errors.js';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Base64 of 32 bytes: 43 characters and one `=`. */
const RAW_KEY_B64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Base64 of the raw 32 bytes of a public key. */
export function rawPublicKey(key: KeyObject): string {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(SPKI_PREFIX.length).toString('base64');
}

/** A public key from base64 of the raw 32 bytes, or from PEM; throws KioskError(code, message) otherwise. */
export function ed25519PublicKey(text: string, code: ErrorCode, message: string): KeyObject {
  const t = text.trim();
  try {
    if (t.startsWith('-----BEGIN')) {
      const key = createPublicKey(t);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
      return key;
    }
    // Exactly 44 base64 characters: Buffer.from would skip junk and read other encodings.
    if (!RAW_KEY_B64.test(t)) throw new Error('not 44 characters of base64 (the raw 32 bytes)');
    const raw = Buffer.from(t, 'base64');
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new KioskError(code, message, { cause });
  }
}
