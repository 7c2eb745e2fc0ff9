/**
 * Site threshold overrides set by the `set_thresholds` command, persisted atomically in
 * `<state_dir>/thresholds.json` with the sha256 of the model they were set for: a different
 * model after an update does not inherit thresholds tuned for another one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, KioskError } from '../errors.js';
import { writeFileAtomic } from '../mqtt/seq-counter.js';

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

/**
 * Checks the new values against the thresholds in force (same keys only, finite numbers,
 * probabilities within 0..1) and returns the merged set.
 */
export function mergeThresholdUpdate(
  active: Readonly<Record<string, number>>,
  update: Record<string, number>,
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
    if (!Number.isFinite(v) || (probability && (v < 0 || v > 1))) {
      throw new KioskError(ErrorCodes.COMMAND_INVALID, `threshold ${k}=${v} is out of range`);
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
