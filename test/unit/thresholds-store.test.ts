/**
 * Threshold overrides (daemon/liveness/thresholds-store.ts): what `set_thresholds`
 * may change (stricter only, in range, known keys), on each bound exactly, and how the
 * overrides are stored for one model and read back; the run-time path (persisted, applied,
 * audited, announced, or nothing changes) and the stored overrides applied at load.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { ModelThresholds } from '../../daemon/liveness/thresholds.js';
import {
  applyStoredThresholds,
  applyThresholdOverrides,
  mergeThresholdUpdate,
  readThresholds,
  type ThresholdsContext,
  thresholdsFile,
  writeThresholds,
} from '../../daemon/liveness/thresholds-store.js';
import { tempDir } from '../helpers/temp.js';

const refusal = (fn: () => unknown): string => {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    if (!isKioskError(e)) return `not a KioskError: ${String(e)}`;
    return `${e.code}: ${e.message}${e.code.startsWith('KIOSK_E_STATE') ? ` (cause: ${e.cause instanceof Error})` : ''}`;
  }
};

describe('threshold overrides', () => {
  const fghv = { p_real_min: 0.5, var_max: 0.01, delta_kl_max: -0.2 };
  const softmax = { live_min: 0.8, spoof_max: 0.5 };
  const strict = (floor: Record<string, number>) => ({ floor, allowLooser: false });
  const loose = (floor: Record<string, number>) => ({ floor, allowLooser: true });

  test('a value equal to the floor is not looser; one step past it is', () => {
    assert.deepEqual(mergeThresholdUpdate(fghv, { p_real_min: 0.5 }, strict(fghv)), fghv);
    assert.deepEqual(mergeThresholdUpdate(fghv, { var_max: 0.01 }, strict(fghv)), fghv);
    assert.deepEqual(mergeThresholdUpdate(fghv, { delta_kl_max: -0.2 }, strict(fghv)), fghv);
    assert.match(
      refusal(() => mergeThresholdUpdate(fghv, { p_real_min: 0.4999 }, strict(fghv))),
      /looser/,
    );
    assert.match(
      refusal(() => mergeThresholdUpdate(fghv, { var_max: 0.0101 }, strict(fghv))),
      /looser/,
    );
    assert.match(
      refusal(() => mergeThresholdUpdate(fghv, { delta_kl_max: -0.19 }, strict(fghv))),
      /looser/,
    );
    // delta_kl_max has no range of its own: any stricter (lower) value, negative too.
    assert.deepEqual(mergeThresholdUpdate(fghv, { delta_kl_max: -5 }, strict(fghv)), {
      ...fghv,
      delta_kl_max: -5,
    });
    // softmax keys: live_min up, spoof_max down.
    assert.deepEqual(mergeThresholdUpdate(softmax, { live_min: 0.9, spoof_max: 0.4 }, strict(softmax)), {
      live_min: 0.9,
      spoof_max: 0.4,
    });
    const msg = refusal(() => mergeThresholdUpdate(softmax, { spoof_max: 0.6 }, strict(softmax)));
    assert.match(
      msg,
      /^KIOSK_E_COMMAND_INVALID: threshold spoof_max=0.6 is looser than the model's spoof_max=0.5/,
    );
    assert.match(msg, /liveness\.allow_looser_thresholds/);
  });

  test('probabilities stay within 0..1 and variances non-negative, on each bound exactly, even when loosening is allowed', () => {
    assert.deepEqual(mergeThresholdUpdate(softmax, { live_min: 1, spoof_max: 0 }, loose(softmax)), {
      live_min: 1,
      spoof_max: 0,
    });
    assert.deepEqual(mergeThresholdUpdate(fghv, { p_real_min: 0, var_max: 0 }, loose(fghv)), {
      ...fghv,
      p_real_min: 0,
      var_max: 0,
    });
    for (const [k, v] of [
      ['live_min', 1.0001],
      ['live_min', -0.0001],
      ['spoof_max', -0.0001],
      ['spoof_max', 1.5],
      ['p_real_min', 1.0001],
      ['p_real_min', -0.0001],
      ['var_max', -0.0001],
      ['delta_kl_max', Number.NEGATIVE_INFINITY],
      ['var_max', Number.NaN],
    ] as const) {
      const active = k in softmax ? softmax : fghv;
      assert.equal(
        refusal(() => mergeThresholdUpdate(active, { [k]: v }, loose(active))),
        `KIOSK_E_COMMAND_INVALID: threshold ${k}=${v} is out of range`,
      );
    }
  });

  test('unknown keys are refused and named; a key without a floor or direction only when loosening is allowed', () => {
    assert.equal(
      refusal(() => mergeThresholdUpdate(softmax, { live_min: 0.9, p_real_min: 0.9 }, loose(softmax))),
      'KIOSK_E_COMMAND_INVALID: unknown threshold(s) p_real_min (valid: live_min, spoof_max)',
    );
    // A model threshold that the floor does not name, or whose name says no direction.
    const odd = { live_min: 0.8, margin: 0.1 };
    assert.match(
      refusal(() => mergeThresholdUpdate(odd, { margin: 0.05 }, strict({ live_min: 0.8 }))),
      /margin=0.05 is looser than the model's margin=\(none\)/,
    );
    assert.match(
      refusal(() => mergeThresholdUpdate(odd, { margin: 0.2 }, strict(odd))),
      /looser/,
    );
    assert.match(
      refusal(() => mergeThresholdUpdate(odd, { margin: 0.05 }, strict(odd))),
      /looser/,
      'no direction: neither way is stricter',
    );
    assert.equal(
      refusal(() => mergeThresholdUpdate(softmax, { a_min: 1, b_max: 2 }, loose(softmax))),
      'KIOSK_E_COMMAND_INVALID: unknown threshold(s) a_min, b_max (valid: live_min, spoof_max)',
    );
    // Range checks go by the key's prefix only: "step_max" is not a probability, "covar_max" not a variance.
    const other = { step_max: 1, covar_max: 0 };
    assert.deepEqual(mergeThresholdUpdate(other, { step_max: 5, covar_max: -1 }, loose(other)), {
      step_max: 5,
      covar_max: -1,
    });
    assert.deepEqual(mergeThresholdUpdate(odd, { margin: 0.2 }, loose(odd)), { live_min: 0.8, margin: 0.2 });
    assert.match(
      refusal(() => mergeThresholdUpdate(softmax, { live_min: 0.85 }, strict({}))),
      /looser/,
    );
    // The merged set keeps the keys not updated.
    assert.deepEqual(mergeThresholdUpdate(fghv, { var_max: 0.005 }, strict(fghv)), {
      ...fghv,
      var_max: 0.005,
    });
  });

  test('stored per model: read back for that model only, finite numbers only; corrupt and unwritable state refused', () => {
    const dir = tempDir('thr');
    assert.deepEqual(readThresholds(dir, 'a'.repeat(64)), {}, 'nothing stored');
    writeThresholds(dir, { model_sha256: 'a'.repeat(64), thresholds: { live_min: 0.9 } });
    assert.equal(thresholdsFile(dir), path.join(dir, 'thresholds.json'));
    assert.deepEqual(JSON.parse(readFileSync(thresholdsFile(dir), 'utf8')), {
      model_sha256: 'a'.repeat(64),
      thresholds: { live_min: 0.9 },
    });
    assert.deepEqual(readThresholds(dir, 'a'.repeat(64)), { live_min: 0.9 });
    assert.deepEqual(readThresholds(dir, 'b'.repeat(64)), {}, 'another model');
    writeFileSync(
      thresholdsFile(dir),
      JSON.stringify({
        model_sha256: 'a'.repeat(64),
        thresholds: { live_min: 0.9, spoof_max: '0.1', x: null },
      }),
    );
    assert.deepEqual(readThresholds(dir, 'a'.repeat(64)), { live_min: 0.9 });
    writeFileSync(thresholdsFile(dir), '{"model_sha256":');
    assert.match(
      refusal(() => readThresholds(dir, 'a'.repeat(64))),
      /^KIOSK_E_STATE_CORRUPT: .*thresholds\.json is not valid JSON \(cause: true\)$/,
    );
    // A state dir that cannot be created (a dangling link).
    const parent = tempDir('thr');
    const broken = path.join(parent, 'state');
    symlinkSync(path.join(parent, 'gone', 'deeper'), broken);
    assert.match(
      refusal(() => writeThresholds(broken, { model_sha256: 'a'.repeat(64), thresholds: {} })),
      /^KIOSK_E_STATE_WRITE_FAILED: cannot write .*thresholds\.json \(cause: true\)$/,
    );
    // A directory where the file should be: unreadable, so nothing is applied.
    const other = tempDir('thr');
    mkdirSync(thresholdsFile(other));
    assert.deepEqual(readThresholds(other, 'a'.repeat(64)), {});
  });
});

describe('the thresholds owner: run-time overrides and stored ones at load', () => {
  const sha = 'c'.repeat(64);
  const owner = () => ({
    info: { sha256: sha },
    thresholds: new ModelThresholds({ family: 'softmax', values: { live_min: 0.8, spoof_max: 0.5 } }),
  });
  const config = (stateDir: string, allowLooser = false) => ({
    device: { state_dir: stateDir },
    liveness: { allow_looser_thresholds: allowLooser },
  });
  const ctxOf = (model: ReturnType<typeof owner>, dir: string, allowLooser = false) => {
    const events: Array<[string, Record<string, unknown>]> = [];
    let announced = 0;
    const ctx: ThresholdsContext = {
      model,
      config: config(dir, allowLooser),
      audit: (event, details) => events.push([event, details]),
      infoChanged: () => {
        announced++;
      },
    };
    return { ctx, events, announced: () => announced };
  };

  test('a stricter override is persisted, put in force, audited and announced; a looser one changes nothing', () => {
    const dir = tempDir('thr');
    const m = owner();
    const { ctx, events, announced } = ctxOf(m, dir);
    const r = applyThresholdOverrides(ctx, { live_min: 0.9 }, 'test');
    assert.deepEqual(r, { thresholds: { live_min: 0.9, spoof_max: 0.5 }, changed: ['live_min'] });
    assert.deepEqual(m.thresholds.active, { live_min: 0.9, spoof_max: 0.5 });
    assert.deepEqual(m.thresholds.floor, { live_min: 0.8, spoof_max: 0.5 }, 'the floor stays');
    assert.deepEqual(readThresholds(dir, sha), { live_min: 0.9 });
    assert.equal(events.length, 1);
    assert.equal(events[0]?.[0], 'config_changed');
    assert.deepEqual(events[0]?.[1], {
      what: 'thresholds',
      by: 'test',
      before: { live_min: 0.8, spoof_max: 0.5 },
      after: { live_min: 0.9, spoof_max: 0.5 },
      floor: { live_min: 0.8, spoof_max: 0.5 },
    });
    assert.equal(announced(), 1);
    // Looser than the floor: refused, nothing stored, applied, audited or announced.
    assert.match(
      refusal(() => applyThresholdOverrides(ctx, { live_min: 0.7 }, 'test')),
      /^KIOSK_E_COMMAND_INVALID: .*looser/,
    );
    assert.deepEqual(m.thresholds.active, { live_min: 0.9, spoof_max: 0.5 });
    assert.deepEqual(readThresholds(dir, sha), { live_min: 0.9 });
    assert.equal(events.length, 1);
    assert.equal(announced(), 1);
    // Back to the floor: the override is gone from what is in force, but the stored set keeps it as sent.
    applyThresholdOverrides(ctx, { spoof_max: 0.4 }, 'test');
    assert.deepEqual(readThresholds(dir, sha), { live_min: 0.9, spoof_max: 0.4 });
    assert.deepEqual(m.thresholds.overrides(), { live_min: 0.9, spoof_max: 0.4 });
  });

  test('stored overrides are applied at load for the same model only; a refused set leaves the floor in force', () => {
    const dir = tempDir('thr');
    const none = applyStoredThresholds(owner(), config(dir));
    assert.deepEqual(none, { applied: {}, refused: null });
    writeThresholds(dir, { model_sha256: sha, thresholds: { spoof_max: 0.3 } });
    const m = owner();
    assert.deepEqual(applyStoredThresholds(m, config(dir)), { applied: { spoof_max: 0.3 }, refused: null });
    assert.deepEqual(m.thresholds.active, { live_min: 0.8, spoof_max: 0.3 });
    const other = { ...owner(), info: { sha256: 'd'.repeat(64) } };
    assert.deepEqual(applyStoredThresholds(other, config(dir)), { applied: {}, refused: null });
    assert.deepEqual(other.thresholds.active, { live_min: 0.8, spoof_max: 0.5 });
    // A hand-edited looser file: refused as a whole unless the site allows looser values.
    writeThresholds(dir, { model_sha256: sha, thresholds: { live_min: 0.5, spoof_max: 0.3 } });
    const refused = owner();
    const r = applyStoredThresholds(refused, config(dir));
    assert.deepEqual(r.applied, {});
    assert.match(r.refused ?? '', /looser/);
    assert.deepEqual(refused.thresholds.active, { live_min: 0.8, spoof_max: 0.5 });
    const allowed = owner();
    assert.deepEqual(applyStoredThresholds(allowed, config(dir, true)).refused, null);
    assert.deepEqual(allowed.thresholds.active, { live_min: 0.5, spoof_max: 0.3 });
  });
});
