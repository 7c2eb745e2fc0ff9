import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { Topics } from '../../daemon/contract/topics.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';

const input = sessionDecision({ trackId: 77 });

test('Topics puts every topic under <prefix>/<device_id>/', () => {
  const t = new Topics('fghv', 'kiosk-lobby-2');
  assert.equal(t.availability, 'fghv/kiosk-lobby-2/availability');
  assert.equal(t.info, 'fghv/kiosk-lobby-2/info');
  assert.equal(t.health, 'fghv/kiosk-lobby-2/health');
  assert.equal(t.audit, 'fghv/kiosk-lobby-2/audit');
  assert.equal(t.decision('front'), 'fghv/kiosk-lobby-2/front/decision');
  assert.equal(t.request('health_check'), 'fghv/kiosk-lobby-2/request/health_check');
  assert.equal(t.response('health_check'), 'fghv/kiosk-lobby-2/response/health_check');
  assert.equal(new Topics('site/a', 'k1').info, 'site/a/k1/info');
});

test('Topics refuses levels that would change the topic tree', () => {
  for (const bad of ['a/b', '+', '#', '']) {
    assert.throws(
      () => new Topics('fghv', bad),
      (e) => isKioskError(e, 'KIOSK_E_USAGE'),
    );
    assert.throws(
      () => new Topics('fghv', 'k').decision(bad),
      (e) => isKioskError(e, 'KIOSK_E_USAGE'),
    );
  }
  assert.throws(
    () => new Topics('fghv/#', 'k'),
    (e) => isKioskError(e, 'KIOSK_E_USAGE'),
  );
  assert.throws(
    () => new Topics('/fghv', 'k'),
    (e) => isKioskError(e, 'KIOSK_E_USAGE'),
  );
});

test('buildDecisionPayload assigns id, seq, ts and expires_at and keeps the contract fields', () => {
  let seq = 41;
  const now = Date.parse('2026-11-28T09:15:02.481Z');
  const p = buildDecisionPayload(input, DECIDED_BY, {
    deviceId: 'kiosk-lobby-2',
    seq: { next: () => ++seq },
    expiryS: 10,
    now: () => now,
    // Published 4 ms after the session's last frame.
    nowMono: () => input.lastFrameMono + 4,
  });
  assert.equal(p.v, 1);
  assert.match(p.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(p.seq, 42);
  assert.equal(p.ts, '2026-11-28T09:15:02.481Z');
  assert.equal(p.expires_at, '2026-11-28T09:15:12.481Z');
  assert.equal(p.device_id, 'kiosk-lobby-2');
  assert.equal('sig' in p, false);
  assert.equal('quality_gate' in p, false);
  // The pipeline's monotonic instants become durations and wall-clock times at publish.
  assert.deepEqual(p.latency_ms, { first_frame_to_decision: 299, last_frame_to_publish: 4 });
  assert.equal(p.presence_since, '2026-11-28T09:15:02.178Z');
  assert.equal(p.held_since, '2026-11-28T09:15:02.477Z');
  assert.deepEqual(p.scores, { p_real: 0.97, var: 0.004, delta_kl: -3.1 });
  assert.equal(p.track_id, 77);
  assert.deepEqual(p.model, DECIDED_BY.model);
  assert.deepEqual(Object.keys(p).sort(), [
    'camera_id',
    'decision',
    'delivery',
    'device_id',
    'execution_provider',
    'expires_at',
    'frames',
    'held_since',
    'id',
    'latency_ms',
    'model',
    'presence_since',
    'quality',
    'reason',
    'scores',
    'seq',
    'track_id',
    'ts',
    'v',
  ]);
  const next = buildDecisionPayload(input, DECIDED_BY, {
    deviceId: 'k',
    seq: { next: () => ++seq },
    expiryS: 10,
    now: () => now,
  });
  assert.equal(next.seq, 43);
  assert.ok(next.id > p.id, 'ids sort in publish order within one millisecond');
});

test('quality_gate is kept only with reason low_quality', () => {
  const env = { deviceId: 'k', seq: { next: () => 1 }, expiryS: 10 };
  const low = buildDecisionPayload(
    { ...input, decision: 'retry', reason: 'low_quality', qualityGate: 'sharpness' },
    DECIDED_BY,
    env,
  );
  assert.equal(low.quality_gate, 'sharpness');
  const other = buildDecisionPayload(
    { ...input, decision: 'retry', reason: 'face_lost', qualityGate: 'sharpness' },
    DECIDED_BY,
    env,
  );
  assert.equal('quality_gate' in other, false);
  assert.equal('held_since' in low, false, 'a retry holds nobody');
});
