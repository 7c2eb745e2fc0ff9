import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { parseCommandRequest, type RequestPolicy } from '../../daemon/contract/commands/request.js';
import { canonicalJson } from '../../daemon/contract/signing/canonical-json.js';
import { mergeThresholdUpdate } from '../../daemon/liveness/thresholds-store.js';

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

  test('limits and messages: size, depth, duplicate keys, bytes, schema paths', () => {
    const msg = (r: ReturnType<typeof parse>) => (r.ok ? 'ok' : r.message);
    // Exactly maxBytes passes; one byte more is too large, and says so.
    const fill = (n: number) => `{"transaction":"${'x'.repeat(n - 18)}"}`;
    assert.equal(Buffer.byteLength(fill(1024)), 1024);
    assert.equal(code(parse('health_check', fill(1024))), 'ok');
    assert.equal(msg(parse('health_check', fill(1025))), 'request of 1025 bytes exceeds 1024');
    assert.equal(
      msg(parse('restart', `{"t":${'['.repeat(17)}${']'.repeat(17)}}`)),
      'request nests deeper than 16 levels',
    );
    assert.equal(code(parse('health_check', `{"transaction":${'['.repeat(15)}${']'.repeat(15)}}`)), 'ok');
    assert.equal(msg(parse('restart', '{"a":1,"a":1}')), 'request has a duplicate key');
    assert.equal(msg(parse('restart', Buffer.from([0xff]))), 'request is not UTF-8 JSON');
    assert.equal(msg(parse('restart', '{')), 'request is not UTF-8 JSON');
    assert.equal(msg(parse('restart', '"x"')), 'request must be a JSON object');
    assert.match(
      msg(parse('launch', '{}')),
      /^unknown command \(known: health_check, get_config, set_thresholds,/,
    );
    // Schema failures name the field, or "(request)" for the object itself.
    assert.match(
      msg(parse('set_thresholds', '{"thresholds":{"p_real_min":"x"}}')),
      /^thresholds\.p_real_min: /,
    );
    assert.match(msg(parse('restart', '{"extra":1}')), /^\(request\): /);
    assert.match(msg(parse('model_update', '{"manifest":"m"}')), /^model: /);
    // A message is cut at 300 characters (a field path can be as long as the request allows).
    const long = parse('set_thresholds', `{"thresholds":{"${'a'.repeat(1000)}":1}}`, { maxBytes: 4096 });
    assert.equal(code(long), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(msg(long).length, 300);
    // The mutating refusal without a fleet key says how to turn the command on.
    assert.match(msg(parse('restart', '{}')), /restart changes the device: .*commands\.fleet_public_keys/);
  });

  test('argument schemas: bounds of each field', () => {
    const ok = (cmd: string, body: Record<string, unknown>) =>
      code(parse(cmd, JSON.stringify(body), { maxBytes: 1 << 16 }));
    const sixteen = Object.fromEntries(
      Array.from({ length: 16 }, (_, i) => [`k${'abcdefghijklmnopq'[i]}`, 1]),
    );
    const seventeen = { ...sixteen, kz: 1 };
    // Unsigned mutating commands stop at UNSIGNED only after their arguments are valid.
    assert.equal(ok('set_thresholds', { thresholds: sixteen }), 'KIOSK_E_COMMAND_UNSIGNED');
    assert.equal(ok('set_thresholds', { thresholds: seventeen }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('set_thresholds', { thresholds: { P_real: 1 } }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(
      ok('set_thresholds', { thresholds: { [`${'a'.repeat(32)}`]: 1 } }),
      'KIOSK_E_COMMAND_UNSIGNED',
    );
    assert.equal(
      ok('set_thresholds', { thresholds: { [`x${'a'.repeat(32)}`]: 1 } }),
      'KIOSK_E_COMMAND_INVALID',
    );
    const m = { model: 'm.onnx', manifest: 'm.json' };
    assert.equal(ok('model_update', { ...m, model: '' }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, manifest: 'x'.repeat(4097) }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, manifest: 'x'.repeat(4096) }), 'KIOSK_E_COMMAND_UNSIGNED');
    assert.equal(ok('model_update', { ...m, sha256: 'a'.repeat(63) }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, sha256: `${'a'.repeat(64)}0` }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, sha256: `0${'a'.repeat(64)}` }), 'KIOSK_E_COMMAND_INVALID');
    const upper = parse('model_update', JSON.stringify({ ...m, sha256: 'A'.repeat(64) }));
    assert.equal(upper.ok ? '' : upper.message.replace(/^sha256: /, ''), 'lower-case hex sha256');
    const empty = parse('set_thresholds', '{"thresholds":{}}');
    assert.equal(empty.ok ? '' : empty.message, 'thresholds: 1 to 16 thresholds');
    assert.equal(ok('model_update', { ...m, manifest_sha256: 'g'.repeat(64) }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, signature: 's'.repeat(201) }), 'KIOSK_E_COMMAND_INVALID');
    assert.equal(ok('model_update', { ...m, signature: 's'.repeat(200) }), 'KIOSK_E_COMMAND_UNSIGNED');
    // Envelope fields are bounded before any signature work.
    for (const [field, max] of [
      ['sig', 200],
      ['ts', 64],
      ['command', 64],
      ['device_id', 64],
    ] as const) {
      assert.equal(ok('health_check', { [field]: 'x'.repeat(max + 1) }), 'KIOSK_E_COMMAND_INVALID', field);
      assert.notEqual(ok('health_check', { [field]: 'x'.repeat(max) }), 'KIOSK_E_COMMAND_INVALID', field);
    }
    // verify: camera id pattern, timeout range and its default.
    const v = parse('verify', '{"camera_id":"front"}');
    assert.ok(v.ok);
    assert.deepEqual(v.args, { camera_id: 'front', timeout_ms: 5000 });
    assert.equal(v.signed, false);
    for (const bad of ['Front', '-front', '', 'a'.repeat(33), 'a b'])
      assert.equal(ok('verify', { camera_id: bad }), 'KIOSK_E_COMMAND_INVALID', bad);
    assert.equal(ok('verify', { camera_id: 'a'.repeat(32) }), 'ok');
    assert.equal(ok('verify', { camera_id: '0_a-b' }), 'ok');
    for (const [t, want] of [
      [99, 'KIOSK_E_COMMAND_INVALID'],
      [100, 'ok'],
      [10_000, 'ok'],
      [10_001, 'KIOSK_E_COMMAND_INVALID'],
      [150.5, 'KIOSK_E_COMMAND_INVALID'],
    ] as const)
      assert.equal(ok('verify', { camera_id: 'front', timeout_ms: t }), want, String(t));
  });

  test('signature checks: clock skew bounds, read-only commands signed or required, replay guard failures', () => {
    const fleet = generateKeyPairSync('ed25519');
    const signedAt = (body: Record<string, unknown>, tsMs: number | null) => {
      const full = { ...body, ...(tsMs === null ? {} : { ts: new Date(tsMs).toISOString() }) };
      return JSON.stringify({
        ...full,
        sig: sign(null, Buffer.from(canonicalJson(full)), fleet.privateKey).toString('base64'),
      });
    };
    const remembered: [string, number][] = [];
    const guard = {
      has: (d: string) => remembered.some(([x]) => x === d),
      add: (d: string, until: number) => {
        remembered.push([d, until]);
      },
    };
    const p = { fleetKeys: [fleet.publicKey], seenSignatures: guard };
    const head = { command: 'restart', device_id: 'k1' };
    // Exactly maxSkewS (60 s) either way passes; a millisecond more does not.
    assert.equal(code(parse('restart', signedAt({ ...head, transaction: 1 }, now - 60_000), p)), 'ok');
    assert.equal(code(parse('restart', signedAt({ ...head, transaction: 2 }, now + 60_000), p)), 'ok');
    const late = parse('restart', signedAt({ ...head, transaction: 3 }, now + 60_001), p);
    assert.equal(code(late), 'KIOSK_E_COMMAND_SIGNATURE_INVALID');
    assert.match(late.ok ? '' : late.message, /clock skew/);
    assert.equal(
      code(parse('restart', signedAt({ ...head, transaction: 4 }, now - 60_001), p)),
      'KIOSK_E_COMMAND_SIGNATURE_INVALID',
    );
    const noTs = parse('restart', signedAt({ ...head, transaction: 5 }, null), p);
    assert.match(noTs.ok ? '' : noTs.message, /ts missing/);
    // The guard remembers each executed signature until its ts leaves the window.
    assert.deepEqual(
      remembered.map(([, until]) => until),
      [now - 60_000 + 60_000, now + 60_000 + 60_000],
    );
    // A read-only command: signed, it is checked and marked; unsigned, refused only when required.
    const hc = parse('health_check', signedAt({ command: 'health_check', device_id: 'k1' }, now), p);
    assert.ok(hc.ok && hc.signed);
    const required = parse('health_check', '{}', { ...p, requireSignature: true });
    assert.equal(code(required), 'KIOSK_E_COMMAND_UNSIGNED');
    assert.equal(required.ok ? '' : required.message, 'request must be signed');
    // Without a replay guard (a caller that keeps none), a valid signed request still runs.
    assert.equal(
      code(parse('restart', signedAt({ ...head, transaction: 10 }, now), { fleetKeys: [fleet.publicKey] })),
      'ok',
    );
    const forged = parse('health_check', '{"sig":"x"}', p);
    assert.equal(code(forged), 'KIOSK_E_COMMAND_SIGNATURE_INVALID');
    const mangled = JSON.parse(signedAt({ ...head, transaction: 11 }, now));
    mangled.transaction = 12;
    const badSig = parse('restart', JSON.stringify(mangled), p);
    assert.equal(badSig.ok ? '' : badSig.message, 'signature does not verify with any fleet key');
    const again = parse('restart', signedAt({ ...head, transaction: 1 }, now - 60_000), p);
    assert.equal(again.ok ? '' : again.message, 'request already executed (replay)');
    const noKey = parse('health_check', signedAt({ command: 'health_check', device_id: 'k1' }, now + 1), {
      ...p,
      fleetKeys: [],
    });
    assert.equal(noKey.ok ? '' : noKey.message, 'no fleet key is configured');
    const otherCommand = parse(
      'restart',
      signedAt({ command: 'reload_config', device_id: 'k1' }, now + 2),
      p,
    );
    assert.equal(
      otherCommand.ok ? '' : otherCommand.message,
      'signed request must name this command and device',
    );
    // A second fleet key verifies too (key rotation).
    const second = generateKeyPairSync('ed25519');
    assert.equal(
      code(
        parse('restart', signedAt({ ...head, transaction: 6 }, now + 3), {
          ...p,
          fleetKeys: [second.publicKey, fleet.publicKey],
        }),
      ),
      'ok',
    );
    // The replay guard failing to remember: not run, with the guard's code or COMMAND_FAILED.
    const failing = (err: unknown) => ({
      ...p,
      seenSignatures: {
        has: () => false,
        add: () => {
          throw err;
        },
      },
    });
    const kiosk = parse(
      'restart',
      signedAt({ ...head, transaction: 7 }, now),
      failing(new KioskError(ErrorCodes.STATE_WRITE_FAILED, 'disk full')),
    );
    assert.equal(code(kiosk), 'KIOSK_E_STATE_WRITE_FAILED');
    assert.equal(kiosk.ok ? '' : kiosk.message, 'disk full');
    const plain = parse('restart', signedAt({ ...head, transaction: 8 }, now), failing(new Error('boom')));
    assert.equal(code(plain), 'KIOSK_E_COMMAND_FAILED');
    assert.equal(plain.ok ? '' : plain.message, 'boom');
    const thrown = parse('restart', signedAt({ ...head, transaction: 9 }, now), failing('text'));
    assert.equal(thrown.ok ? '' : thrown.message, 'text');
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
