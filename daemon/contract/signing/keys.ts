/**
 * The device's Ed25519 decision key pair, created on first start in the state directory
 * (`decision-key.pem`, mode 0600, PKCS#8). The public key travels in `info` as base64 of the
 * raw 32 bytes, the form gate integrators configure.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../core/atomic-write.js';
import { ed25519PublicKey, rawPublicKey } from '../../../core/ed25519.js';
import { ErrorCodes, KioskError } from '../../../core/errors.js';

import { signedBytes } from './canonical-json.js';

export { rawPublicKey };

/** A public key from base64 of the raw 32 bytes, or from PEM. */
export function publicKeyFrom(text: string): KeyObject {
  return ed25519PublicKey(
    text,
    ErrorCodes.SIGNATURE_KEY_INVALID,
    'not an Ed25519 public key (base64 raw or PEM)',
  );
}

export class DecisionSigner {
  readonly publicKey: string;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = rawPublicKey(createPublicKey(privateKey));
  }

  /** Loads `<stateDir>/decision-key.pem`, creating it (0600) when absent. */
  static loadOrCreate(stateDir: string): DecisionSigner {
    const file = path.join(stateDir, 'decision-key.pem');
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new KioskError(ErrorCodes.STATE_CORRUPT, `cannot read the decision key ${file}`, { cause: e });
      }
      const { privateKey } = generateKeyPairSync('ed25519');
      pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      try {
        writeFileAtomic(file, pem, 0o600);
      } catch (cause) {
        throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot write the decision key ${file}`, {
          cause,
        });
      }
    }
    // A key readable by others lets them forge decisions: tighten it whatever its origin.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    try {
      return new DecisionSigner(createPrivateKey(pem));
    } catch (cause) {
      throw new KioskError(ErrorCodes.STATE_CORRUPT, `${file} is not a private key`, { cause });
    }
  }

  static fromKey(privateKey: KeyObject): DecisionSigner {
    return new DecisionSigner(privateKey);
  }

  /** Returns the payload with `sig` (base64) over the canonical JSON of every other field. */
  sign<T extends object>(payload: T): T & { sig: string } {
    const sig = sign(null, signedBytes(payload as Record<string, unknown>), this.privateKey).toString(
      'base64',
    );
    return { ...payload, sig };
  }
}
