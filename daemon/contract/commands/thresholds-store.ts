/**
 * Site threshold overrides set by the `set_thresholds` command, persisted atomically in
 * `<state_dir>/thresholds.json` with the sha256 of the model they were set for: a different
 * model after an update does not inherit thresholds tuned for another one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../../core/errors.js';

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
