/**
 * A liveness model's thresholds, with one owner: the values in force (the object the verdict
 * functions read per frame), the floor they were loaded with (manifest merged with the config
 * file's `liveness.thresholds`: what a run-time override may only tighten), and the overrides
 * in force (the values that differ from the floor). The floor rules, the checks of an update
 * and its persistence are beside it in thresholds-store.ts, with the two ways overrides take
 * effect: applyStoredThresholds where the model is loaded (daemon, drill) and
 * applyThresholdOverrides at run time (the `set_thresholds` command, the drill's apply).
 * Also the typed views of loose score and threshold records (the drill's replay), no casts.
 */
import type { FghvScores, FghvThresholds, SoftmaxThresholds } from './verdict.js';

export type FamilyThresholds =
  | { family: 'fghv'; values: FghvThresholds }
  | { family: 'softmax'; values: SoftmaxThresholds };

export class ModelThresholds {
  /** The thresholds as loaded (manifest + config file), before any override; frozen. */
  readonly floor: Readonly<Record<string, number>>;

  constructor(private readonly t: FamilyThresholds) {
    this.floor = Object.freeze({ ...t.values });
  }

  /** The thresholds in force (a live view: the verdicts read it per frame). */
  get active(): Readonly<Record<string, number>> {
    return this.t.values;
  }

  /** The family's typed thresholds in force. */
  get typed(): FamilyThresholds {
    return this.t;
  }

  /** The overrides in force: the keys whose value differs from the floor ({} when none). */
  overrides(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.t.values).filter(([k, v]) => this.floor[k] !== v));
  }

  /**
   * Puts checked values in force (mergeThresholdUpdate checked them against the floor). Only
   * the model's own keys are taken; each must be a finite number.
   */
  apply(values: Readonly<Record<string, number>>): void {
    const t = this.t;
    if (t.family === 'fghv') {
      t.values.p_real_min = pick(values, 'p_real_min', t.values.p_real_min);
      t.values.var_max = pick(values, 'var_max', t.values.var_max);
      t.values.delta_kl_max = pick(values, 'delta_kl_max', t.values.delta_kl_max);
    } else {
      t.values.live_min = pick(values, 'live_min', t.values.live_min);
      t.values.spoof_max = pick(values, 'spoof_max', t.values.spoof_max);
    }
  }
}

function pick(values: Readonly<Record<string, number>>, key: string, current: number): number {
  if (!Object.hasOwn(values, key)) return current;
  const v = values[key];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new RangeError(`threshold ${key} must be a finite number`);
  return v;
}

/** A score record as FGHV scores; a missing score is NaN (the verdict is then uncertain). */
export function fghvScoresOf(s: Readonly<Record<string, number | undefined>>): FghvScores {
  return {
    p_real: s.p_real ?? Number.NaN,
    var: s.var ?? Number.NaN,
    delta_kl: s.delta_kl ?? Number.NaN,
    kl_real: s.kl_real ?? Number.NaN,
    kl_attack: s.kl_attack ?? Number.NaN,
  };
}

/** A threshold record as FGHV thresholds; a missing one is NaN (nothing passes it: fail closed). */
export function fghvThresholdsOf(t: Readonly<Record<string, number | undefined>>): FghvThresholds {
  return {
    p_real_min: t.p_real_min ?? Number.NaN,
    var_max: t.var_max ?? Number.NaN,
    delta_kl_max: t.delta_kl_max ?? Number.NaN,
  };
}

/** A threshold record as softmax thresholds; a missing one is NaN (nothing passes it: fail closed). */
export function softmaxThresholdsOf(t: Readonly<Record<string, number | undefined>>): SoftmaxThresholds {
  return { live_min: t.live_min ?? Number.NaN, spoof_max: t.spoof_max ?? Number.NaN };
}
