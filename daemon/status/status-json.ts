/**
 * Pure pieces of the /api/status answer: what the page keeps of a decision, and frame
 * rates between two samples of the daemon's totals.
 */
import type { DecisionPayload } from '../contract/payloads.js';
import type { CameraTotals } from './metrics.js';

export interface RateSample {
  /** Monotonic ms. */
  at: number;
  totals: CameraTotals[];
}

export interface CameraRates {
  capture: number;
  processed: number;
  dropped: number;
}

/** Frames per second per camera between two samples (0.1 fps resolution); {} when no time passed. */
export function ratesBetween(before: RateSample, after: RateSample): Record<string, CameraRates> {
  const dt = (after.at - before.at) / 1000;
  const out: Record<string, CameraRates> = {};
  if (!(dt > 0)) return out;
  const rate = (a: number, b: number) => Math.round((Math.max(0, b - a) / dt) * 10) / 10;
  for (const t of after.totals) {
    const b = before.totals.find((x) => x.camera === t.camera);
    if (!b) continue;
    out[t.camera] = {
      capture: rate(b.captured, t.captured),
      processed: rate(b.processed, t.processed),
      dropped: rate(b.dropped, t.dropped),
    };
  }
  return out;
}

/** The fields an installer needs to see why a decision was taken. */
export function summariseDecision(d: DecisionPayload) {
  return {
    ts: d.ts,
    seq: d.seq,
    camera_id: d.camera_id,
    track_id: d.track_id,
    decision: d.decision,
    reason: d.reason,
    quality_gate: d.quality_gate ?? null,
    scores: d.scores,
    frames: d.frames,
    quality: d.quality,
  };
}
