/**
 * The thresholds' owner (daemon/liveness/thresholds.ts): the floor is the set as loaded and
 * never moves, overrides are what differs from it, only the model's own keys are put in force,
 * and the typed views of loose records fail closed (a missing value never lets a face pass).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fghvScoresOf,
  fghvThresholdsOf,
  ModelThresholds,
  softmaxThresholdsOf,
} from '../../daemon/liveness/thresholds.js';
import { fghvVerdict, softmaxVerdict } from '../../daemon/liveness/verdict.js';

test('floor, overrides and apply', () => {
  const t = new ModelThresholds({
    family: 'fghv',
    values: { p_real_min: 0.5, var_max: 0.2, delta_kl_max: 1 },
  });
  assert.deepEqual(t.overrides(), {});
  t.apply({ p_real_min: 0.7, unknown_key: 3 });
  assert.deepEqual(t.active, { p_real_min: 0.7, var_max: 0.2, delta_kl_max: 1 });
  assert.deepEqual(t.overrides(), { p_real_min: 0.7 });
  assert.deepEqual(t.floor, { p_real_min: 0.5, var_max: 0.2, delta_kl_max: 1 });
  assert.ok(Object.isFrozen(t.floor));
  assert.throws(() => t.apply({ var_max: Number.NaN }), /var_max must be a finite number/);
  assert.equal(t.active.var_max, 0.2);
  t.apply({ p_real_min: 0.5 });
  assert.deepEqual(t.overrides(), {});
  const s = new ModelThresholds({ family: 'softmax', values: { live_min: 0.8, spoof_max: 0.3 } });
  s.apply({ spoof_max: 0.2, p_real_min: 0.9 });
  assert.deepEqual(s.active, { live_min: 0.8, spoof_max: 0.2 });
  assert.equal(s.typed.family, 'softmax');
});

test('typed views of loose records fail closed', () => {
  const live = { p_real: 0.9, var: 0.01, delta_kl: 0.1, kl_real: 0, kl_attack: 0 };
  const box = { p_real_min: 0.5, var_max: 0.2, delta_kl_max: 1 };
  assert.equal(fghvVerdict(fghvScoresOf(live), fghvThresholdsOf(box)), 'live');
  assert.equal(fghvVerdict(fghvScoresOf({ ...live, var: undefined }), fghvThresholdsOf(box)), 'uncertain');
  assert.notEqual(
    fghvVerdict(fghvScoresOf(live), fghvThresholdsOf({ var_max: 0.2, delta_kl_max: 1 })),
    'live',
  );
  assert.equal(softmaxVerdict(0.99, softmaxThresholdsOf({ live_min: 0.8, spoof_max: 0.3 })), 'live');
  assert.notEqual(softmaxVerdict(0.99, softmaxThresholdsOf({ spoof_max: 0.3 })), 'live');
});
