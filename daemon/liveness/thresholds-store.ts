/**
 * Site threshold overrides, owned by the liveness layer beside the thresholds themselves
 * (thresholds.ts): the floor rules and checks of an update (mergeThresholdUpdate), their
 * persistence in `<state_dir>/thresholds.json` with the sha256 of the model they were set for
 * (a different model after an update does not inherit thresholds tuned for another one), and
 * the two ways they take effect: applyStoredThresholds where the model is loaded, and
 * applyThresholdOverrides, the one run-time path (the `set_thresholds` command, the drill's
 * apply).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { ModelThresholds } from './thresholds.js';

export interface StoredThresholds {
  model_sha256: string;
  thresholds: Record<string, number>;
}

export function thresholdsFile(stateDir: string): string {
  return path.join(stateDir, 'thresholds.json');
}

/** The stored overrides for this model, or {} (none stored, or stored for another model). */
export function readThresholds(stateDir: string, modelSha256: string): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(thresholdsFile(stateDir), 'utf8');
  } catch {
    return {};
  }
  try {
    const stored = JSON.parse(text) as StoredThresholds;
    if (stored.model_sha256 !== modelSha256) return {};
    return Object.fromEntries(
      Object.entries(stored.thresholds).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)),
    );
  } catch (cause) {
    throw new KioskError(ErrorCodes.STATE_CORRUPT, `${thresholdsFile(stateDir)} is not valid JSON`, {
      cause,
    });
  }
}

/** How a threshold tightens: `_min` keys upwards, `_max` keys downwards. */
function direction(key: string): 'min' | 'max' | null {
  if (key.endsWith('_min')) return 'min';
  if (key.endsWith('_max')) return 'max';
  return null;
}

export interface ThresholdBounds {
  /**
   * The thresholds an override may only tighten: the manifest's, as the local config file
   * set them (`liveness.thresholds`). A `_min` key may not go below its floor, a `_max` key
   * not above it.
   */
  floor: Readonly<Record<string, number>>;
  /** `liveness.allow_looser_thresholds`: the site explicitly allows loosening. */
  allowLooser: boolean;
}

/**
 * Checks the new values against the thresholds in force (same keys only, finite numbers,
 * probabilities within 0..1, variances not negative) and against the floor, and returns the
 * merged set.
 */
export function mergeThresholdUpdate(
  active: Readonly<Record<string, number>>,
  update: Record<string, number>,
  bounds: ThresholdBounds,
): Record<string, number> {
  const unknown = Object.keys(update).filter((k) => !Object.hasOwn(active, k));
  if (unknown.length) {
    throw new KioskError(
      ErrorCodes.COMMAND_INVALID,
      `unknown threshold(s) ${unknown.join(', ')} (valid: ${Object.keys(active).join(', ')})`,
    );
  }
  for (const [k, v] of Object.entries(update)) {
    const probability = /^(p_|live_|spoof_)/.test(k);
    const nonNegative = /^var_/.test(k);
    if (!Number.isFinite(v) || (probability && (v < 0 || v > 1)) || (nonNegative && v < 0)) {
      throw new KioskError(ErrorCodes.COMMAND_INVALID, `threshold ${k}=${v} is out of range`);
    }
    const floor = bounds.floor[k];
    const dir = direction(k);
    const looser = floor === undefined || dir === null ? true : dir === 'min' ? v < floor : v > floor;
    if (looser && !bounds.allowLooser) {
      throw new KioskError(
        ErrorCodes.COMMAND_INVALID,
        `threshold ${k}=${v} is looser than the model's ${k}=${floor ?? '(none)'}: only stricter values are accepted unless liveness.allow_looser_thresholds is set`,
      );
    }
  }
  return { ...active, ...update };
}

export function writeThresholds(stateDir: string, value: StoredThresholds): void {
  try {
    writeFileAtomic(thresholdsFile(stateDir), `${JSON.stringify(value, null, 2)}\n`);
  } catch (cause) {
    throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot write ${thresholdsFile(stateDir)}`, {
      cause,
    });
  }
}

/** What the thresholds' paths need of the config: where they are stored, whether looser is allowed. */
export interface ThresholdsConfig {
  device: Pick<Config['device'], 'state_dir'>;
  liveness: Pick<Config['liveness'], 'allow_looser_thresholds'>;
}

/** What the thresholds' paths need of a loaded model (a LivenessModel is one). */
export interface ThresholdsOwner {
  readonly info: { readonly sha256: string };
  readonly thresholds: ModelThresholds;
}

export interface ThresholdsContext {
  model: ThresholdsOwner;
  config: ThresholdsConfig;
  /** Records the change (the contract's audit log; passed in, the liveness layer sits below it). */
  audit: (event: 'config_changed', details: Record<string, unknown>) => void;
  log?: { warn(obj: object, msg: string): void };
  /** Republishes info (the overrides and config_hash are part of it). */
  infoChanged?: () => void;
}

/**
 * The one path that changes thresholds at run time (the `set_thresholds` command, and local
 * tools): checked against the model's floor, persisted before it takes effect, applied to
 * the running model, logged, audited and announced. Throws KIOSK_E_COMMAND_INVALID for a
 * refused value; nothing changes then.
 */
export function applyThresholdOverrides(
  ctx: ThresholdsContext,
  update: Record<string, number>,
  by: string,
): { thresholds: Record<string, number>; changed: string[] } {
  const { model: m, config } = ctx;
  const before = { ...m.thresholds.active };
  const merged = mergeThresholdUpdate(before, update, {
    floor: m.thresholds.floor,
    allowLooser: config.liveness.allow_looser_thresholds,
  });
  const changed = Object.keys(merged).filter((k) => before[k] !== merged[k]);
  // What is in force plus the update: stored values the floor refused at start are dropped.
  const stored = { ...m.thresholds.overrides(), ...update };
  // Persist first: a crash right after answering must not forget what was acknowledged.
  writeThresholds(config.device.state_dir, { model_sha256: m.info.sha256, thresholds: stored });
  m.thresholds.apply(merged);
  ctx.audit('config_changed', { what: 'thresholds', by, before, after: merged, floor: m.thresholds.floor });
  ctx.log?.warn(
    { before, after: merged, by },
    `liveness thresholds overridden by ${by}: ${changed.map((k) => `${k}=${merged[k]}`).join(', ') || 'no change'}`,
  );
  ctx.infoChanged?.();
  return { thresholds: merged, changed };
}

/**
 * Applies the overrides `set_thresholds` persisted for this model (after a restart). Stored
 * values that the floor refuses (a file edited by hand, or written before the floor existed)
 * are not applied: the model's own thresholds stay in force, and the refusal is returned.
 */
export function applyStoredThresholds(
  model: ThresholdsOwner,
  config: ThresholdsConfig,
): { applied: Record<string, number>; refused: string | null } {
  const floor = model.thresholds.floor;
  const stored = readThresholds(config.device.state_dir, model.info.sha256);
  try {
    const merged = mergeThresholdUpdate(model.thresholds.active, stored, {
      floor,
      allowLooser: config.liveness.allow_looser_thresholds,
    });
    model.thresholds.apply(merged);
    return { applied: stored, refused: null };
  } catch (err) {
    return { applied: {}, refused: err instanceof Error ? err.message : String(err) };
  }
}
