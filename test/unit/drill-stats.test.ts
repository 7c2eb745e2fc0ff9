import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  binomialCdf,
  clopperPearson,
  errorInterval,
  errorRates,
  type Outcome,
  requiredSamples,
} from '../../daemon/drill/stats.js';

const close = (actual: number, expected: number, tol = 5e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

// Reference values computed independently with SciPy 1.x (Debian python3-scipy):
//   lower = beta.ppf(0.025, x, n - x + 1), upper = beta.ppf(0.975, x + 1, n - x)
// i.e. the textbook beta-quantile form of Clopper-Pearson, not the binomial-sum form used here.
const REFERENCE: [x: number, n: number, lower: number, upper: number][] = [
  [0, 10, 0, 0.308497],
  [1, 10, 0.002529, 0.445016],
  [5, 10, 0.187086, 0.812914],
  [10, 10, 0.691503, 1],
  [2, 50, 0.004881, 0.137138],
  [3, 300, 0.002067, 0.028945],
  [1, 20, 0.001265, 0.248733],
  [7, 40, 0.073383, 0.32779],
  [1, 12, 0.002108, 0.384796],
  [2, 8, 0.031854, 0.650856],
];

describe('drill statistics', () => {
  it('binomial cdf matches hand sums', () => {
    // n = 3, p = 0.5: P(X<=0) = 1/8, P(X<=1) = 4/8, P(X<=2) = 7/8.
    close(binomialCdf(0, 3, 0.5), 0.125, 1e-12);
    close(binomialCdf(1, 3, 0.5), 0.5, 1e-12);
    close(binomialCdf(2, 3, 0.5), 0.875, 1e-12);
    close(binomialCdf(3, 3, 0.5), 1, 1e-12);
  });

  it('Clopper-Pearson agrees with the beta-quantile reference values', () => {
    for (const [x, n, lo, hi] of REFERENCE) {
      const ci = clopperPearson(x, n);
      close(ci.lower, lo);
      close(ci.upper, hi);
    }
  });

  it('Clopper-Pearson closed forms at the ends: 1-(a/2)^(1/n) and (a/2)^(1/n)', () => {
    for (const n of [1, 5, 30, 300]) {
      close(clopperPearson(0, n).upper, 1 - 0.025 ** (1 / n), 1e-9);
      close(clopperPearson(n, n).lower, 0.025 ** (1 / n), 1e-9);
    }
  });

  it('zero errors: the rule of three, 3/n (capped at 1)', () => {
    assert.deepEqual(errorInterval(0, 300), { lower: 0, upper: 0.01, method: 'rule_of_three' });
    assert.deepEqual(errorInterval(0, 2), { lower: 0, upper: 1, method: 'rule_of_three' });
    assert.equal(errorInterval(1, 300).method, 'clopper_pearson');
  });

  it('rejects impossible counts', () => {
    assert.throws(() => clopperPearson(3, 2), RangeError);
    assert.throws(() => clopperPearson(0, 0), RangeError);
    assert.throws(() => clopperPearson(0.5, 2), RangeError);
  });

  it('BPCER, APCER per type (worst reported) and ACER from labelled outcomes', () => {
    const many = (n: number, o: Outcome) => Array.from({ length: n }, () => ({ ...o }));
    // Hand computation: 12 bona fide, 1 refused -> BPCER 1/12; 10 prints, none accepted ->
    // APCER(print) 0/10; 8 replays, 2 accepted -> APCER(replay) 2/8 = 0.25 (the worst);
    // ACER = (0.25 + 1/12) / 2 = 1/6.
    const outcomes: Outcome[] = [
      ...many(11, { label: 'bona_fide', attackType: null, accepted: true }),
      ...many(1, { label: 'bona_fide', attackType: null, accepted: false }),
      ...many(10, { label: 'attack', attackType: 'print', accepted: false }),
      ...many(6, { label: 'attack', attackType: 'replay', accepted: false }),
      ...many(2, { label: 'attack', attackType: 'replay', accepted: true }),
    ];
    const r = errorRates(outcomes);
    assert.equal(r.bpcer.errors, 1);
    assert.equal(r.bpcer.n, 12);
    close(r.bpcer.ci?.lower ?? -1, 0.002108);
    close(r.bpcer.ci?.upper ?? -1, 0.384796);
    assert.deepEqual(Object.keys(r.apcer), ['print', 'replay']);
    assert.deepEqual(r.apcer.print?.ci, { lower: 0, upper: 0.3, method: 'rule_of_three' });
    assert.equal(r.apcer.replay?.rate, 0.25);
    close(r.apcer.replay?.ci?.lower ?? -1, 0.031854);
    close(r.apcer.replay?.ci?.upper ?? -1, 0.650856);
    assert.equal(r.worstAttack, 'replay');
    close(r.acer ?? -1, 1 / 6, 1e-12);
  });

  it('one class only: the other figures are unmeasured, not zero', () => {
    const r = errorRates([{ label: 'bona_fide', attackType: null, accepted: true }]);
    assert.equal(r.bpcer.rate, 0);
    assert.deepEqual(r.apcer, {});
    assert.equal(r.worstAttack, null);
    assert.equal(r.acer, null);
    const none = errorRates([]);
    assert.equal(none.bpcer.rate, null);
    assert.equal(none.bpcer.ci, null);
  });

  it('binomial cdf at its edges: k < 0, k >= n, p = 0 and p = 1', () => {
    assert.equal(binomialCdf(-1, 3, 0.5), 0);
    assert.equal(binomialCdf(5, 3, 0.5), 1);
    assert.equal(binomialCdf(0, 5, 0), 1);
    assert.equal(binomialCdf(4, 5, 1), 0);
    close(binomialCdf(0, 4, 0.25), 0.75 ** 4, 1e-12);
    // n = 4, p = 0.25: P(X <= 1) = 0.75^4 + 4 * 0.25 * 0.75^3.
    close(binomialCdf(1, 4, 0.25), 0.75 ** 4 + 4 * 0.25 * 0.75 ** 3, 1e-12);
    close(binomialCdf(2, 4, 0.9), 0.1 ** 4 + 4 * 0.9 * 0.1 ** 3 + 6 * 0.81 * 0.01, 1e-12);
  });

  it('Clopper-Pearson at another confidence, and counts that cannot be', () => {
    for (const n of [3, 40]) {
      close(clopperPearson(0, n, 0.9).upper, 1 - 0.05 ** (1 / n), 1e-9);
      close(clopperPearson(n, n, 0.9).lower, 0.05 ** (1 / n), 1e-9);
    }
    assert.equal(clopperPearson(0, 7).lower, 0);
    assert.equal(clopperPearson(7, 7).upper, 1);
    for (const [x, n] of [
      [-1, 5],
      [1, 1.5],
      [6, 5],
      [0, -1],
    ])
      assert.throws(
        () => errorInterval(x as number, n as number),
        /need integers 0 <= errors <= n and n >= 1/,
      );
    assert.deepEqual(errorInterval(0, 4), { lower: 0, upper: 0.75, method: 'rule_of_three' });
    assert.deepEqual(errorInterval(0, 3), { lower: 0, upper: 1, method: 'rule_of_three' });
  });

  it('worst attack type: highest rate, ties to the type with more presentations; types sorted; unnamed ones grouped', () => {
    const o = (attackType: string | null, accepted: boolean): Outcome => ({
      label: 'attack',
      attackType,
      accepted,
    });
    const r = errorRates([
      o('replay', true),
      o('replay', false),
      o('mask', true),
      o('mask', false),
      o('mask', true),
      o('mask', false),
      o('print', false),
      o(null, false),
      o(null, false),
    ]);
    assert.deepEqual(Object.keys(r.apcer), ['mask', 'print', 'replay', 'unspecified']);
    assert.equal(r.apcer.unspecified?.n, 2);
    assert.equal(r.worstAttack, 'mask', 'replay and mask both 0.5: mask has 4 presentations, replay 2');
    assert.equal(r.bpcer.n, 0);
    assert.equal(r.acer, null, 'no bona fide: ACER unmeasured');
    const first = errorRates([o('b', true), o('b', true), o('a', true)]);
    assert.equal(first.worstAttack, 'b');
    const lower = errorRates([o('a', false), o('b', true), o('b', false), o('b', false)]);
    assert.equal(lower.worstAttack, 'b', '1/3 beats 0/1');
    assert.equal(lower.apcer.b?.rate, 1 / 3);
  });

  it('sample size for a target: rule of three without errors, Clopper-Pearson with some', () => {
    // The smallest such total: one fewer does not show it.
    const m2 = requiredSamples(0.1, { errors: 1, n: 20 }) as number;
    assert.ok(clopperPearson(Math.round(0.05 * m2), m2).upper <= 0.1);
    assert.ok(clopperPearson(Math.round(0.05 * (m2 - 1)), m2 - 1).upper > 0.1, `${m2 - 1} already shows it`);
    // Enough already: the count so far.
    assert.equal(requiredSamples(0.1, { errors: 1, n: 1000 }), 1000);
    assert.equal(requiredSamples(0.01, { errors: 0, n: 500 }), 500);
    assert.equal(requiredSamples(0.1, { errors: 2, n: 20 }), null, 'observed 0.1 is the target itself');
    for (const bad of [1, -0.5, Number.NaN])
      assert.throws(() => requiredSamples(bad), /target must be within/);
    assert.equal(requiredSamples(0.01), 300);
    assert.equal(requiredSamples(0.05), 60);
    assert.equal(requiredSamples(0.2), 15);
    assert.equal(requiredSamples(0.01, { errors: 0, n: 40 }), 300);
    // 1 error in 100 cannot show <= 1 %; to show <= 2 % at the same 1 % proportion needs a
    // total whose Clopper-Pearson upper bound is <= 0.02 (about 650, SciPy).
    assert.equal(requiredSamples(0.01, { errors: 1, n: 100 }), null);
    const m = requiredSamples(0.02, { errors: 1, n: 100 }) as number;
    assert.ok(m > 500 && m < 800, `got ${m}`);
    assert.ok(clopperPearson(Math.round(m / 100), m).upper <= 0.02);
    assert.throws(() => requiredSamples(0));
  });
});
