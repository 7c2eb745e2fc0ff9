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
  it('softmax is stable for large logits and sums to 1', () => {
    const p = softmax([1000, 1001, 999]);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok((p[1] as number) > (p[0] as number));
    assert.ok(p.every(Number.isFinite));
  });
});
