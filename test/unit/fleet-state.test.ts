import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { FleetState, parsePinnedKeys } from '../../daemon/cli/fleet/state.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';

const signer = () => DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
const b = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

function decision(
  s: DecisionSigner | null,
  deviceId: string,
  seq: number,
  over: Record<string, unknown> = {},
) {
  const p = {
    ...buildDecisionPayload(sessionDecision(), DECIDED_BY, {
      deviceId,
      seq: { next: () => seq },
      expiryS: 10,
    }),
    ...over,
  };
  return s ? s.sign(p) : p;
}

function info(deviceId: string, key: string, over: Record<string, unknown> = {}) {
  return {
    v: 1,
    device_id: deviceId,
    software: { name: 'fghv-kiosk', version: '1' },
    model: { name: 'm', version: '1', sha256: 'a'.repeat(64), family: 'fghv', purpose: 'production' },
    cameras: [{ id: 'front', kind: 'file', source: 'x' }],
    decision_public_key: key,
    ...over,
  };
}

describe('FleetState', () => {
  it('verifies a decision with the key of the device info and flags what does not verify', () => {
    const s = new FleetState({ prefix: 'fghv', pinnedKeys: null });
    const k = signer();
    s.ingest('fghv/d1/availability', b('online'));
    s.ingest('fghv/d1/info', b(info('d1', k.publicKey)));
    s.ingest('fghv/d1/front/decision', b(decision(k, 'd1', 1)));
    let d = s.device_view('d1');
    assert.equal(d?.online, true);
    assert.deepEqual([d?.last_decision?.verified, d?.last_decision?.seq, d?.flags], [true, 1, []]);
    assert.equal(d?.decisions_per_min.accept, 1);

    // Forged: signed with another key.
    s.ingest('fghv/d1/front/decision', b(decision(signer(), 'd1', 2)));
    d = s.device_view('d1');
    assert.deepEqual([d?.last_decision?.verified, d?.last_decision?.problem], [false, 'bad_signature']);
    assert.ok(d?.flags.includes('unverified_decision'));
    // Unsigned.
    s.ingest('fghv/d1/front/decision', b(decision(null, 'd1', 3)));
    assert.equal(s.device_view('d1')?.last_decision?.problem, 'missing_signature');
    // A genuine decision of d1 replayed later (same seq) and one moved to another camera.
    const genuine = decision(k, 'd1', 4);
    s.ingest('fghv/d1/front/decision', b(genuine));
    assert.equal(s.device_view('d1')?.last_decision?.verified, true);
    s.ingest('fghv/d1/front/decision', b(genuine));
    assert.equal(s.device_view('d1')?.last_decision?.problem, 'replayed_seq');
    s.ingest('fghv/d1/back/decision', b(decision(k, 'd1', 5)));
    assert.equal(s.device_view('d1')?.last_decision?.problem, 'wrong_camera');
    // The audit copy is not a live decision.
    s.ingest('fghv/d1/front/decision', b(k.sign({ ...decision(null, 'd1', 6), delivery: 'audit' })));
    assert.equal(s.device_view('d1')?.last_decision?.problem, 'not_live');
    assert.equal(s.device_view('d1')?.unverified_total, 5);
    assert.equal(s.snapshot().totals.flagged, 1);
  });

  it('a decision before the info is checked again when the key arrives', () => {
    const s = new FleetState({ prefix: 'fghv', pinnedKeys: null });
    const k = signer();
    s.ingest('fghv/d2/front/decision', b(decision(k, 'd2', 7)));
    assert.equal(s.device_view('d2')?.last_decision?.problem, 'no_key');
    s.ingest('fghv/d2/info', b(info('d2', k.publicKey)));
    assert.equal(s.device_view('d2')?.last_decision?.verified, true);
  });

  it('pinned keys: a key in info that differs is refused, a device not pinned has no key', () => {
    const k = signer();
    const s = new FleetState({ prefix: 'fghv', pinnedKeys: new Map([['d3', k.publicKey]]) });
    const attacker = signer();
    s.ingest('fghv/d3/info', b(info('d3', attacker.publicKey)));
    s.ingest('fghv/d3/front/decision', b(decision(attacker, 'd3', 1)));
    const d3 = s.device_view('d3');
    assert.deepEqual([d3?.last_decision?.verified, d3?.key.source], [false, 'pinned']);
    assert.ok(d3?.flags.includes('key_not_pinned'));
    s.ingest('fghv/d3/front/decision', b(decision(k, 'd3', 2)));
    assert.equal(s.device_view('d3')?.last_decision?.verified, true);
    const other = signer();
    s.ingest('fghv/d4/info', b(info('d4', other.publicKey)));
    s.ingest('fghv/d4/front/decision', b(decision(other, 'd4', 1)));
    const d4 = s.device_view('d4');
    assert.deepEqual([d4?.last_decision?.problem, d4?.flags.includes('unknown_device')], ['no_key', true]);
  });

  it('without pinned keys a changed key is followed and flagged', () => {
    const s = new FleetState({ prefix: 'fghv', pinnedKeys: null });
    s.ingest('fghv/d5/info', b(info('d5', signer().publicKey)));
    assert.deepEqual(s.device_view('d5')?.flags, []);
    s.ingest('fghv/d5/info', b(info('d5', signer().publicKey)));
    assert.ok(s.device_view('d5')?.flags.includes('key_changed'));
  });

  it('flags a demo model, loosened overrides, clock skew and a camera down; ignores junk', () => {
    let now = Date.parse('2026-12-01T10:00:00Z');
    const s = new FleetState({ prefix: 'fghv', pinnedKeys: null, now: () => now });
    const k = signer();
    s.ingest('fghv/d6/availability', b('online'));
    s.ingest(
      'fghv/d6/info',
      b(
        info('d6', k.publicKey, {
          model: { name: 'demo', version: '1', sha256: 'a'.repeat(64), family: 'fghv', purpose: 'demo' },
          threshold_overrides: { p_real_min: 0.3, var_max: 0.005 },
          model_thresholds: { p_real_min: 0.5, var_max: 0.01 },
        }),
      ),
    );
    s.ingest(
      'fghv/d6/health',
      b({
        device_id: 'd6',
        ts: '2026-12-01T10:00:30Z',
        fps: { capture: 15, processed: 14, dropped: 1 },
        cameras: [{ id: 'front', state: 'failed', capture_fps: null }],
      }),
    );
    const d = s.device_view('d6');
    assert.deepEqual(d?.loosened_thresholds, ['p_real_min']);
    assert.deepEqual([...(d?.flags ?? [])].sort(), [
      'camera_down',
      'clock_skew',
      'model_not_production',
      'thresholds_loosened',
      'thresholds_overridden',
    ]);
    assert.equal(d?.clock_skew_s, 30);
    assert.deepEqual(d?.cameras, [{ id: 'front', kind: 'file', state: 'failed', capture_fps: null }]);
    // Decisions per minute forget what is older than 60 s.
    s.ingest('fghv/d6/front/decision', b(decision(k, 'd6', 1)));
    assert.equal(s.device_view('d6')?.decisions_per_min.accept, 1);
    now += 61_000;
    assert.equal(s.device_view('d6')?.decisions_per_min.accept, 0);
    const before = s.size;
    s.ingest('other/d7/info', b('{}'));
    s.ingest('fghv/../info', b('{}'));
    s.ingest('fghv/d8/info', b('not json'));
    s.ingest('fghv/d9/info', b(info('someone-else', k.publicKey)));
    assert.equal(s.device_view('d9')?.model, null, 'an info naming another device is ignored');
    assert.ok(s.size <= before + 2);
  });

  it('pinned keys file: JSON object of base64 raw keys, or KIOSK_E_FLEET_KEYS_INVALID', () => {
    const k = signer().publicKey;
    assert.equal(parsePinnedKeys(JSON.stringify({ d1: k }), 'f').get('d1'), k);
    for (const bad of ['nope', '[]', JSON.stringify({ d1: 'short' })])
      assert.throws(
        () => parsePinnedKeys(bad, 'keys.json'),
        (e: unknown) => isKioskError(e, 'KIOSK_E_FLEET_KEYS_INVALID') && /keys\.json/.test(e.message),
      );
  });
});
