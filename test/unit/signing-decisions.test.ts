import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runVerify } from '../../daemon/cli/verify.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { canonicalJson, signedBytes } from '../../daemon/contract/signing/canonical-json.js';
import { DecisionSigner, publicKeyFrom } from '../../daemon/contract/signing/keys.js';
import { checkDecision, verifyDecision, verifySignature } from '../../daemon/contract/signing/verify.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';

const input = sessionDecision({ trackId: 3 });

function decision(signer: DecisionSigner, seq: number, now = Date.parse('2026-11-28T09:15:02.481Z')) {
  return signer.sign(
    buildDecisionPayload(input, DECIDED_BY, {
      deviceId: 'k1',
      seq: { next: () => seq },
      expiryS: 10,
      now: () => now,
    }),
  );
}

describe('canonical JSON', () => {
  test('fixed vectors: sorted keys at every level, no whitespace, JSON numbers and escapes', () => {
    assert.equal(
      canonicalJson({ b: 1, a: [3, { d: null, c: true }], é: 'x"y' }),
      '{"a":[3,{"c":true,"d":null}],"b":1,"é":"x\\"y"}',
    );
    assert.equal(
      canonicalJson({ n: 1e21, f: 0.1, neg: -0, s: '\u2028' }),
      '{"f":0.1,"n":1e+21,"neg":0,"s":"\u2028"}',
    );
    assert.equal(canonicalJson({ u: undefined, z: 1 }), '{"z":1}');
    assert.throws(() => canonicalJson({ x: Number.NaN }), TypeError);
    assert.equal(canonicalJson({ B: 1, a: 2, _: 3 }), '{"B":1,"_":3,"a":2}');
  });

  test('field order does not change the signed bytes; sig and replayed are not covered', () => {
    const a = signedBytes({ x: 1, y: { b: 2, a: 1 }, sig: 'S', replayed: true });
    const b = signedBytes({ y: { a: 1, b: 2 }, x: 1 });
    assert.deepEqual(a, b);
  });
});

describe('decision signatures', () => {
  const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);

  test('every failure has its own reason; the checks asked for are the ones made', () => {
    const d = decision(signer, 5);
    const key = signer.publicKey;
    // verifySignature on what is not a signed object: false, never a throw.
    for (const x of [null, 'text', 7, [d], { ...d, sig: 5 }, { ...d, sig: undefined }])
      assert.equal(verifySignature(x, key), false, JSON.stringify(x)?.slice(0, 40));
    // A payload canonical JSON cannot encode (a function-valued field): false, not a throw.
    assert.equal(verifySignature({ ...d, f: () => 1 }, key), false);
    // Objects given as objects are checked as such; text and bytes are parsed strictly first.
    assert.deepEqual(checkDecision(null, key), { ok: false, reason: 'not_an_object' });
    assert.deepEqual(checkDecision(7, key), { ok: false, reason: 'not_an_object' });
    assert.deepEqual(checkDecision('null', key), { ok: false, reason: 'not_an_object' });
    assert.deepEqual(checkDecision(Buffer.from([0xff, 0x22]), key), { ok: false, reason: 'not_json' });
    assert.deepEqual(checkDecision({ ...d, sig: 5 }, key), { ok: false, reason: 'missing_signature' });
    const { sig: _sig, ...unsigned } = d;
    assert.deepEqual(checkDecision(unsigned, key), { ok: false, reason: 'missing_signature' });
    assert.deepEqual(checkDecision(JSON.stringify(d), key), { ok: true, seq: 5 });
    // Without `now` no expiry check against the clock is made; a missing or unreadable
    // expires_at fails with or without it (bad_expiry: it must lie within 300 s after ts).
    const old = decision(signer, 6, Date.parse('2020-01-01T00:00:00Z'));
    assert.deepEqual(checkDecision(old, key), { ok: true, seq: 6 });
    const noExpiry = signer.sign({ ...d, sig: undefined, expires_at: undefined });
    assert.deepEqual(checkDecision(noExpiry, key, { now: 0 }), { ok: false, reason: 'bad_expiry' });
    assert.deepEqual(checkDecision(noExpiry, key), { ok: false, reason: 'bad_expiry' });
    const numericExpiry = signer.sign({ ...d, sig: undefined, expires_at: 9e15 });
    assert.deepEqual(checkDecision(numericExpiry, key, { now: 0 }), { ok: false, reason: 'bad_expiry' });
    // A seq that is not a number never passes, replay check or not.
    const textSeq = signer.sign({ ...d, sig: undefined, seq: '99' });
    assert.deepEqual(checkDecision(textSeq, key, { lastSeq: 1 }), { ok: false, reason: 'bad_seq' });
  });

  test('a signed decision verifies; any altered field, another key or a missing sig does not', () => {
    const d = decision(signer, 5);
    assert.match(d.sig, /^[A-Za-z0-9+/]{86}==$/);
    assert.deepEqual(checkDecision(d, signer.publicKey), { ok: true, seq: 5 });
    // Reordered fields and the audit's `replayed` mark still verify.
    const reordered = Object.fromEntries(Object.entries(d).reverse());
    assert.equal(verifySignature({ ...reordered, replayed: true }, signer.publicKey), true);
    for (const [k, v] of [
      ['decision', 'reject'],
      ['seq', 6],
      ['expires_at', '2030-01-01T00:00:00.000Z'],
      ['device_id', 'k2'],
      ['scores', { ...d.scores, p_real: 0.98 }],
    ] as const) {
      assert.deepEqual(
        checkDecision({ ...d, [k]: v }, signer.publicKey),
        { ok: false, reason: 'bad_signature' },
        k,
      );
    }
    const other = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    assert.equal(checkDecision(d, other.publicKey).ok, false);
    assert.equal(checkDecision({ ...d, sig: 'AAAA' }, signer.publicKey).ok, false);
    assert.deepEqual(checkDecision('x', signer.publicKey), { ok: false, reason: 'not_json' });
    assert.deepEqual(checkDecision('[1]', signer.publicKey), { ok: false, reason: 'not_an_object' });
  });

  test('expiry, device and replay checks for gates', () => {
    const now = Date.parse('2026-11-28T09:15:02.481Z');
    const d = decision(signer, 9, now);
    assert.equal(checkDecision(d, signer.publicKey, { now: now + 9_999 }).ok, true);
    assert.deepEqual(checkDecision(d, signer.publicKey, { now: now + 10_000 }), {
      ok: false,
      reason: 'expired',
    });
    assert.deepEqual(checkDecision(d, signer.publicKey, { lastSeq: 9 }), {
      ok: false,
      reason: 'replayed_seq',
    });
    assert.equal(checkDecision(d, signer.publicKey, { lastSeq: 8, deviceId: 'k1' }).ok, true);
    assert.deepEqual(checkDecision(d, signer.publicKey, { deviceId: 'k2' }), {
      ok: false,
      reason: 'wrong_device',
    });
  });

  test('a gate verification is bound to camera, device, delivery, expiry; strict base64 and keys', () => {
    const now = Date.parse('2026-11-28T09:15:02.481Z');
    const d = decision(signer, 12, now);
    const gate = { deviceId: 'k1', cameraId: 'front', now: now + 1 };
    assert.deepEqual(verifyDecision(JSON.stringify(d), signer.publicKey, gate), { ok: true, seq: 12 });
    assert.deepEqual(verifyDecision(d, signer.publicKey, { ...gate, cameraId: 'back' }), {
      ok: false,
      reason: 'wrong_camera',
    });
    // An audit copy is signed as such: valid for audit, never as a live decision.
    const { sig: _live, ...unsigned } = d;
    const audit = signer.sign({ ...unsigned, delivery: 'audit' as const });
    assert.equal(checkDecision(audit, signer.publicKey).ok, true);
    assert.deepEqual(verifyDecision(audit, signer.publicKey, gate), { ok: false, reason: 'not_live' });
    assert.deepEqual(verifyDecision({ ...audit, delivery: 'live' }, signer.publicKey, gate), {
      ok: false,
      reason: 'bad_signature',
    });
    // Decisions signed before the delivery kind existed do not pass as live.
    const { delivery: _d, ...old } = unsigned;
    assert.deepEqual(verifyDecision(signer.sign(old), signer.publicKey, gate), {
      ok: false,
      reason: 'not_live',
    });
    // Trailing junk and missing padding in sig: refused, although Buffer.from would decode them.
    for (const sig of [`${d.sig}AAAA`, d.sig.replace(/==$/, ''), ` ${d.sig}`]) {
      assert.deepEqual(verifyDecision({ ...d, sig }, signer.publicKey, gate), {
        ok: false,
        reason: 'bad_signature',
      });
    }
    // A duplicate key (two parsers could read different values) and absurd nesting.
    const text = JSON.stringify(d);
    const dup = text.replace('"decision":"accept"', '"decision":"reject","decision":"accept"');
    assert.deepEqual(verifyDecision(dup, signer.publicKey, gate), { ok: false, reason: 'duplicate_key' });
    const deep = `{"x":${'['.repeat(50)}${']'.repeat(50)}}`;
    assert.deepEqual(verifyDecision(deep, signer.publicKey, gate), { ok: false, reason: 'too_deep' });
  });

  test('the key pair is created once in the state dir with mode 0600 and reloaded; PEM and raw public keys parse', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fghv-key-'));
    const a = DecisionSigner.loadOrCreate(dir);
    const file = path.join(dir, 'decision-key.pem');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const b = DecisionSigner.loadOrCreate(dir);
    assert.equal(a.publicKey, b.publicKey);
    assert.equal(Buffer.from(a.publicKey, 'base64').length, 32);
    const pem = publicKeyFrom(a.publicKey).export({ format: 'pem', type: 'spki' }).toString();
    assert.equal(verifySignature(decision(b, 1), pem as unknown as string), true);
    assert.ok(readFileSync(file, 'utf8').startsWith('-----BEGIN PRIVATE KEY-----'));
    assert.throws(() => publicKeyFrom('c2hvcnQ='), /KIOSK_E_SIGNATURE_KEY_INVALID|32 bytes|Ed25519/);
  });

  test('`fghv-kiosk verify` prints ok per valid line and FAIL for altered, non-JSON and replayed lines', () => {
    const lines = [
      decision(signer, 1),
      decision(signer, 2),
      { ...decision(signer, 3), decision: 'reject' },
      decision(signer, 2),
    ];
    const text = `${lines.map((l) => JSON.stringify(l)).join('\n')}\nnot json\n`;
    const out: string[] = [];
    const rc = runVerify(
      ['--key', signer.publicKey, '--device', 'k1'],
      () => text,
      (l) => out.push(l),
    );
    assert.equal(rc, 1);
    assert.deepEqual(
      out.map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['ok seq=1', 'ok seq=2', 'FAIL bad_signature', 'FAIL replayed_seq', 'FAIL not_json'],
    );
    const good: string[] = [];
    assert.equal(
      runVerify(
        ['--key', signer.publicKey],
        () => JSON.stringify(lines[0]),
        (l) => good.push(l),
      ),
      0,
    );
  });
});
