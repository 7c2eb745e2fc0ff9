import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseCommandRequest, type RequestPolicy } from '../../daemon/contract/commands/request.js';
import { mergeThresholdUpdate } from '../../daemon/contract/commands/thresholds-store.js';
import { canonicalJson } from '../../daemon/contract/signing/canonical-json.js';

const now = Date.parse('2026-11-28T10:00:00.000Z');
const policy: RequestPolicy = {
  deviceId: 'k1',
  maxBytes: 1024,
  requireSignature: false,
  fleetKeys: [],
  maxSkewS: 60,
  now,
};
const parse = (cmd: string, body: string | Buffer, p: Partial<RequestPolicy> = {}) =>
  parseCommandRequest(cmd, Buffer.isBuffer(body) ? body : Buffer.from(body), { ...policy, ...p });
const code = (r: ReturnType<typeof parse>) => (r.ok ? 'ok' : r.code);

describe('command request parsing', () => {
  test('fixed vectors: each failure has its code, the transaction is echoed when readable', () => {
    const cases: [string, string | Buffer, string][] = [
      ['health_check', '{"transaction":1}', 'ok'],
      ['health_check', '{}', 'ok'],
      ['get_config', '{"transaction":{"a":[1]}}', 'ok'],
      // Commands that change the device are off without a fleet key (secure by default).
      ['set_thresholds', '{"thresholds":{"p_real_min":0.7}}', 'KIOSK_E_COMMAND_UNSIGNED'],
      ['set_thresholds', '{"thresholds":{}}', 'KIOSK_E_COMMAND_INVALID'],
      ['set_thresholds', '{"thresholds":{"p_real_min":"0.7"}}', 'KIOSK_E_COMMAND_INVALID'],
      ['set_thresholds', '{"thresholds":[1]}', 'KIOSK_E_COMMAND_INVALID'],
      ['model_update', '{"model":"/m.onnx","manifest":"/m.json"}', 'KIOSK_E_COMMAND_UNSIGNED'],
      ['restart', '{}', 'KIOSK_E_COMMAND_UNSIGNED'],
      ['reload_config', '{}', 'KIOSK_E_COMMAND_UNSIGNED'],
      ['health_check', '{"a":1,"a":2}', 'KIOSK_E_COMMAND_MALFORMED'],
      ['health_check', `{"transaction":${'['.repeat(17)}${']'.repeat(17)}}`, 'KIOSK_E_COMMAND_MALFORMED'],
      [
        'model_update',
        `{"model":"/m.onnx","manifest":"/m.json","sha256":"${'A'.repeat(64)}"}`,
        'KIOSK_E_COMMAND_INVALID',
      ],
      ['model_update', '{"manifest":"/m.json"}', 'KIOSK_E_COMMAND_INVALID'],
      ['restart', '{"extra":1}', 'KIOSK_E_COMMAND_INVALID'],
      ['restart', '{', 'KIOSK_E_COMMAND_MALFORMED'],
      ['restart', '[]', 'KIOSK_E_COMMAND_MALFORMED'],
      ['restart', 'null', 'KIOSK_E_COMMAND_MALFORMED'],
      ['restart', Buffer.from([0xff, 0xfe, 0x7b]), 'KIOSK_E_COMMAND_MALFORMED'],
      ['restart', `{"transaction":"${'x'.repeat(2000)}"}`, 'KIOSK_E_COMMAND_TOO_LARGE'],
      ['__proto__', '{}', 'KIOSK_E_COMMAND_UNKNOWN'],
      ['toString', '{}', 'KIOSK_E_COMMAND_UNKNOWN'],
      ['launch', '{"transaction":9}', 'KIOSK_E_COMMAND_UNKNOWN'],
    ];
    for (const [cmd, body, want] of cases)
      assert.equal(code(parse(cmd, body)), want, `${cmd} ${String(body).slice(0, 40)}`);
    const unknown = parse('launch', '{"transaction":9}');
    assert.equal(unknown.transaction, 9);
    assert.equal(parse('restart', '{').transaction, null);
  });

  test('signed requests: fleet key, command, device, fresh ts, used once', () => {
    const fleet = generateKeyPairSync('ed25519');
    const signed = (body: Record<string, unknown>, key = fleet.privateKey) =>
      JSON.stringify({ ...body, sig: sign(null, Buffer.from(canonicalJson(body)), key).toString('base64') });
    const seen = new Set<string>();
    const p = { requireSignature: true, fleetKeys: [fleet.publicKey], seenSignatures: seen };
    const body = { transaction: 1, command: 'restart', device_id: 'k1', ts: new Date(now).toISOString() };
    const good = signed(body);
    assert.equal(code(parse('restart', good, p)), 'ok');
    assert.equal(code(parse('restart', good, p)), 'KIOSK_E_COMMAND_SIGNATURE_INVALID', 'replay');
    assert.equal(code(parse('restart', '{"transaction":1}', p)), 'KIOSK_E_COMMAND_UNSIGNED');
    assert.equal(
      code(parse('health_check', signed({ ...body, ts: new Date(now + 1).toISOString() }), p)),
      'KIOSK_E_COMMAND_SIGNATURE_INVALID',
    );
    assert.equal(
      code(parse('restart', signed({ ...body, device_id: 'k2' }), p)),
      'KIOSK_E_COMMAND_SIGNATURE_INVALID',
    );
    assert.equal(
      code(parse('restart', signed({ ...body, ts: new Date(now - 61_000).toISOString() }), p)),
      'KIOSK_E_COMMAND_SIGNATURE_INVALID',
    );
    const rogue = generateKeyPairSync('ed25519').privateKey;
    assert.equal(
      code(parse('restart', signed({ ...body, transaction: 2 }, rogue), p)),
      'KIOSK_E_COMMAND_SIGNATURE_INVALID',
    );
    const tampered = JSON.parse(signed({ ...body, transaction: 3 }));
    tampered.transaction = 4;
    assert.equal(code(parse('restart', JSON.stringify(tampered), p)), 'KIOSK_E_COMMAND_SIGNATURE_INVALID');
  });

  test('with a fleet key configured and require_signature off, well-formed unsigned mutating requests are refused', () => {
    const fleet = generateKeyPairSync('ed25519');
    const p = { requireSignature: false, fleetKeys: [fleet.publicKey], seenSignatures: new Set<string>() };
    const ts = new Date(now).toISOString();
    // Each body is valid for its schema (names command, device and ts as a signed one would): only `sig` is missing.
    const unsigned: [string, Record<string, unknown>][] = [
      ['restart', {}],
      ['reload_config', {}],
      ['set_thresholds', { thresholds: { p_real_min: 0.9 } }],
      ['model_update', { model: 'm.onnx', manifest: 'm.json', sha256: 'a'.repeat(64) }],
    ];
    for (const [cmd, args] of unsigned) {
      const body = JSON.stringify({ transaction: cmd, ...args, command: cmd, device_id: 'k1', ts });
      const r = parse(cmd, body, p);
      assert.equal(code(r), 'KIOSK_E_COMMAND_UNSIGNED', cmd);
      assert.equal(r.transaction, cmd);
    }
    // Read-only commands stay open without a signature.
    const health = parse('health_check', '{}', p);
    assert.ok(health.ok && !health.signed);
  });

  test('threshold updates: known keys only, in range, never looser than the floor unless allowed', () => {
    const active = { p_real_min: 0.5, var_max: 0.01, delta_kl_max: 0 };
    const strict = { floor: active, allowLooser: false };
    const loose = { floor: active, allowLooser: true };
    assert.deepEqual(mergeThresholdUpdate(active, { var_max: 0.005 }, strict), { ...active, var_max: 0.005 });
    assert.deepEqual(mergeThresholdUpdate(active, { p_real_min: 0.6 }, strict), {
      ...active,
      p_real_min: 0.6,
    });
    assert.throws(() => mergeThresholdUpdate(active, { var_max: 0.02 }, strict), /looser/);
    assert.throws(() => mergeThresholdUpdate(active, { p_real_min: 0.4 }, strict), /looser/);
    assert.throws(() => mergeThresholdUpdate(active, { delta_kl_max: 1e300 }, strict), /looser/);
    assert.deepEqual(mergeThresholdUpdate(active, { var_max: 0.02 }, loose), { ...active, var_max: 0.02 });
    assert.throws(() => mergeThresholdUpdate(active, { live_min: 0.9 }, loose), /unknown threshold/);
    assert.throws(() => mergeThresholdUpdate(active, { p_real_min: 1.5 }, loose), /out of range/);
    assert.throws(() => mergeThresholdUpdate(active, { var_max: -5 }, loose), /out of range/);
  });
});
