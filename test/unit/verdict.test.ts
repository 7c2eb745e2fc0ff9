import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fghvVerdict, softmax, softmaxVerdict } from '../../daemon/liveness/verdict.js';

const t = { p_real_min: 0.6, var_max: 0.02, delta_kl_max: 0.5 };
const base = { p_real: 0.9, var: 0.01, delta_kl: -1, kl_real: 1, kl_attack: 2 };

describe('per-frame verdicts', () => {
  it('fghv: live only inside the decision box', () => {
    assert.equal(fghvVerdict(base, t), 'live');
    assert.equal(fghvVerdict({ ...base, p_real: 0.5 }, t), 'spoof');
    assert.equal(fghvVerdict({ ...base, delta_kl: 0.6 }, t), 'spoof');
  });
  it('fghv: high variance is uncertain even with a perfect p_real (fail closed)', () => {
    assert.equal(fghvVerdict({ ...base, p_real: 1, var: 0.03 }, t), 'uncertain');
    assert.equal(fghvVerdict({ ...base, var: Number.NaN }, t), 'uncertain');
    assert.equal(fghvVerdict({ ...base, p_real: Number.NaN }, t), 'uncertain');
  });
  it('softmax: live, spoof, uncertain band, NaN', () => {
    const s = { live_min: 0.8, spoof_max: 0.5 };
    assert.equal(softmaxVerdict(0.95, s), 'live');
    assert.equal(softmaxVerdict(0.8, s), 'live');
    assert.equal(softmaxVerdict(0.6, s), 'uncertain');
    assert.equal(softmaxVerdict(0.5, s), 'spoof');
    assert.equal(softmaxVerdict(Number.NaN, s), 'uncertain');
  });
  it('fghv: on each threshold exactly, the same side as the calibration (models/fghv metrics.decide)', () => {
    // calibrate sets p_real_min to a bona fide sample's own score, var_max and delta_kl_max to
    // quantiles of bona fide values: a sample on the threshold counts as accepted there, so
    // the daemon must accept it too (accepted iff var <= var_max, delta_kl <= max, p_real >= min).
    const edge = { ...base, p_real: t.p_real_min, var: t.var_max, delta_kl: t.delta_kl_max };
    assert.equal(fghvVerdict(edge, t), 'live');
    assert.equal(fghvVerdict({ ...edge, var: t.var_max * 1.0001 }, t), 'uncertain');
    assert.equal(fghvVerdict({ ...edge, delta_kl: t.delta_kl_max + 1e-9 }, t), 'spoof');
    assert.equal(fghvVerdict({ ...edge, p_real: t.p_real_min - 1e-9 }, t), 'spoof');
    for (const bad of [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.equal(fghvVerdict({ ...base, p_real: bad }, t), 'uncertain');
      assert.equal(fghvVerdict({ ...base, var: bad }, t), 'uncertain');
      assert.equal(fghvVerdict({ ...base, delta_kl: bad }, t), 'uncertain');
    }
  });
  it('softmax: an infinite probability is uncertain, never live or spoof', () => {
    const s = { live_min: 0.8, spoof_max: 0.5 };
    assert.equal(softmaxVerdict(Number.POSITIVE_INFINITY, s), 'uncertain');
    assert.equal(softmaxVerdict(Number.NEGATIVE_INFINITY, s), 'uncertain');
    assert.equal(softmaxVerdict(0.5000001, s), 'uncertain');
    assert.equal(softmaxVerdict(0.7999999, s), 'uncertain');
  });
  it('softmax: exact values on fixed logits', () => {
    const p = softmax([0, Math.log(3)]);
    assert.ok(Math.abs((p[0] as number) - 0.25) < 1e-15 && Math.abs((p[1] as number) - 0.75) < 1e-15);
    assert.deepEqual(softmax([2, 2, 2, 2]), [0.25, 0.25, 0.25, 0.25]);
    assert.deepEqual(softmax([-1000, 0]), [0, 1]);
    // The largest logit is subtracted first: negative logits only, still exact.
    const q = softmax([-5, -5 + Math.log(4)]);
    assert.ok(Math.abs((q[1] as number) - 0.8) < 1e-12);
  });
  it('softmax is stable for large logits and sums to 1', () => {
    const p = softmax([1000, 1001, 999]);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok((p[1] as number) > (p[0] as number));
    assert.ok(p.every(Number.isFinite));
  });
});
