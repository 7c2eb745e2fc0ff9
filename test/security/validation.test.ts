/**
 * Issue 24, finding 9: `config check` accepted a fleet key given as base64 SPKI that `run`
 * then refused; `decision_expiry_s` had no upper bound; `verifyDecision` accepted a signed
 * decision with `seq` 1e300 or `expires_at` in 2099; a line without `seq` made `fghv-kiosk
 * verify` print `seq=NaN` and fail every later line. Each refused here.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { runVerify } from '../../daemon/cli/verify.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { checkDecision, verifyDecision } from '../../daemon/contract/signing/verify.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';

describe('finding 9: validation gaps', () => {
  test('fleet keys: what config check accepts is what run accepts', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    const ok = (k: string) => configSchema.safeParse({ commands: { fleet_public_keys: [k] } }).success;
    assert.equal(ok(raw), true);
    assert.equal(ok(pem), true);
    for (const bad of [spki, `${raw}junk`, raw.slice(0, -4), rsa, 'not a key'])
      assert.equal(ok(bad), false, bad);
  });

  test('decision_expiry_s: at most 300', () => {
    const ok = (s: number) => configSchema.safeParse({ mqtt: { decision_expiry_s: s } }).success;
    assert.equal(ok(300), true);
    assert.equal(ok(301), false);
  });

  const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
  const now = Date.now();
  const signed = (seq: number, expiryS = 10) =>
    signer.sign(
      buildDecisionPayload(sessionDecision(), DECIDED_BY, {
        deviceId: 'k',
        seq: { next: () => seq },
        expiryS,
        now: () => now,
      }),
    );
  const gate = { deviceId: 'k', cameraId: 'front', now: now + 1 };

  test('verifyDecision: seq and expiry bounds hold even under a valid signature', () => {
    assert.deepEqual(verifyDecision(JSON.stringify(signed(7)), signer.publicKey, gate), { ok: true, seq: 7 });
    assert.equal(verifyDecision(JSON.stringify(signed(7, 300)), signer.publicKey, gate).ok, true);
    for (const [d, reason] of [
      [signed(1e300), 'bad_seq'],
      [signed(-1), 'bad_seq'],
      [signed(1.5), 'bad_seq'],
      [signed(7, 301), 'bad_expiry'],
      [signed(7, 2_300_000_000), 'bad_expiry'],
    ] as const) {
      assert.deepEqual(verifyDecision(JSON.stringify(d), signer.publicKey, gate), { ok: false, reason });
    }
    const { seq: _s, ...noSeq } = signed(8);
    assert.deepEqual(checkDecision(signer.sign(noSeq as never), signer.publicKey), {
      ok: false,
      reason: 'bad_seq',
    });
  });

  test('fghv-kiosk verify: a line without seq fails alone; later lines still verify', () => {
    const { seq: _s, ...noSeq } = signed(2);
    const lines = [signed(1), signer.sign(noSeq as never), signed(3)]
      .map((d) => JSON.stringify(d))
      .join('\n');
    const out: string[] = [];
    const code = runVerify(
      ['--key', signer.publicKey],
      () => lines,
      (l) => out.push(l),
    );
    assert.equal(code, 1);
    assert.match(out[0] ?? '', /^ok seq=1 /);
    assert.equal(out[1], 'FAIL bad_seq');
    assert.match(out[2] ?? '', /^ok seq=3 /);
    assert.ok(!out.join('\n').includes('NaN'));
  });
});
