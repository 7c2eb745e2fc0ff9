/**
 * The device's decision key (daemon/contract/signing/keys.ts) under bad state: a key file that
 * others can read is tightened to 0600, an unreadable, corrupt or unwritable key is a stable
 * error code, and what the signer publishes is the key its signatures verify with.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { signedBytes } from '../../daemon/contract/signing/canonical-json.js';
import { DecisionSigner, publicKeyFrom, rawPublicKey } from '../../daemon/contract/signing/keys.js';
import { tempDir } from '../helpers/temp.js';

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isKioskError(e) ? e.code : `not a KioskError: ${String(e)}`;
  }
};
/** The error's code, message and whether it keeps its cause. */
const described = (fn: () => unknown) => {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isKioskError(e) ? `${e.code} ${e.message} (cause: ${e.cause instanceof Error})` : String(e);
  }
};

describe('decision key', () => {
  test('a key file readable by group or others is tightened to 0600 and kept', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o700]) {
      const dir = tempDir('key');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const file = path.join(dir, 'decision-key.pem');
      writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }));
      chmodSync(file, mode);
      const signer = DecisionSigner.loadOrCreate(dir);
      const want = mode & 0o077 ? 0o600 : mode;
      assert.equal((statSync(file).mode & 0o777).toString(8), want.toString(8), `from ${mode.toString(8)}`);
      assert.equal(signer.publicKey, rawPublicKey(publicKey), 'the existing key is used, not replaced');
    }
  });

  test('unreadable, corrupt and unwritable key files are refused with their codes', () => {
    const dir = tempDir('key');
    const keyFile = path.join(dir, 'decision-key.pem');
    mkdirSync(keyFile);
    assert.equal(
      described(() => DecisionSigner.loadOrCreate(dir)),
      `KIOSK_E_STATE_CORRUPT cannot read the decision key ${keyFile} (cause: true)`,
      'a directory',
    );
    const bad = tempDir('key');
    writeFileSync(path.join(bad, 'decision-key.pem'), '-----BEGIN PRIVATE KEY-----\nnot a key\n', {
      mode: 0o600,
    });
    assert.equal(
      described(() => DecisionSigner.loadOrCreate(bad)),
      `KIOSK_E_STATE_CORRUPT ${path.join(bad, 'decision-key.pem')} is not a private key (cause: true)`,
      'garbage',
    );
    assert.match(String(readFileSync(path.join(bad, 'decision-key.pem'))), /not a key/, 'left as it was');
    // Absent, and its directory cannot be created (a dangling link, refused even to root).
    const broken = path.join(tempDir('key'), 'state');
    symlinkSync(path.join(path.dirname(broken), 'gone', 'deeper'), broken);
    assert.equal(
      described(() => DecisionSigner.loadOrCreate(broken)),
      `KIOSK_E_STATE_WRITE_FAILED cannot write the decision key ${path.join(broken, 'decision-key.pem')} (cause: true)`,
    );
  });

  test('sign() covers every field but sig and replayed, with the key it publishes', () => {
    const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    const payload = { b: 1, a: 'x', replayed: true };
    const signed = signer.sign(payload);
    assert.deepEqual({ ...signed, sig: undefined }, { ...payload, sig: undefined });
    const ok = verify(
      null,
      signedBytes(signed),
      publicKeyFrom(signer.publicKey),
      Buffer.from(signed.sig, 'base64'),
    );
    assert.equal(ok, true);
    assert.equal(signedBytes(signed).toString(), '{"a":"x","b":1}');
  });

  test('public keys: raw base64 and PEM accepted, anything else is KIOSK_E_SIGNATURE_KEY_INVALID', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = rawPublicKey(publicKey);
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    assert.equal(rawPublicKey(publicKeyFrom(raw)), raw);
    assert.equal(rawPublicKey(publicKeyFrom(`  ${pem}\n`)), raw);
    for (const bad of [
      'c2hvcnQ=',
      '',
      Buffer.alloc(33).toString('base64'),
      '-----BEGIN PUBLIC KEY-----\nxx\n',
    ])
      assert.equal(
        code(() => publicKeyFrom(bad)),
        'KIOSK_E_SIGNATURE_KEY_INVALID',
        JSON.stringify(bad),
      );
  });
});
