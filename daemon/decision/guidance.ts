/**
 * Guidance for the person in front of a camera: what a kiosk UI can tell them while nothing is
 * decided yet (come closer, more light, hold still, one person at a time). One state per camera
 * per frame, from what the pipeline saw and the fusion state after the frame; published on
 * `<prefix>/<device_id>/<camera_id>/guidance` when it changes, rate-limited.
 *
 * States, first match wins:
 *  - `idle`: no face in view;
 *  - `face_detected` also when only weak faces were seen (scored below detector.score_threshold
 *    but above report_threshold): something face-like is there, not yet clear enough to decide;
 *  - `one_person`: several faces and decision.multiple_faces is `retry`;
 *  - `decided`: the person was accepted or rejected and is held (one decision per presence);
 *    the next person held is a change too (guidedPresence: a new held_since);
 *  - `move_closer` / `too_dark` / `too_bright` / `hold_still`: the face failed the face_size /
 *    brightness (below min, above max) / sharpness gate;
 *  - `verifying`: a session is collecting verdicts;
 *  - `face_detected`: a face, but no session (waiting out a cooldown or a retry interval).
 * Pure: time is passed in, no I/O.
 */
import { trackKey } from './fusion.js';
import type { DecisionConfig, FrameObservation, FusionState, QualityConfig } from './types.js';

export const GUIDANCE_STATES = [
  'idle',
  'face_detected',
  'verifying',
  'decided',
  'move_closer',
  'too_dark',
  'too_bright',
  'hold_still',
  'one_person',
] as const;
export type GuidanceState = (typeof GUIDANCE_STATES)[number];

export interface GuidanceInput {
  cameraId: string;
  /** Faces the detector reported in the frame with the score needed to decide. */
  facesInView: number;
  /** Faces below that score (reported, never decided on). */
  weakFaces?: number;
  /** The observations fused for this frame (after `largest` selection). */
  observations: readonly FrameObservation[];
  /** Fusion state after the frame. */
  state: FusionState;
}

export function guidanceFor(
  input: GuidanceInput,
  cfg: { decision: Pick<DecisionConfig, 'multiple_faces'>; quality: Pick<QualityConfig, 'min_brightness'> },
): GuidanceState {
  if (input.facesInView === 0 || input.observations.length === 0)
    return (input.weakFaces ?? 0) > 0 ? 'face_detected' : 'idle';
  if (input.facesInView > 1 && cfg.decision.multiple_faces === 'retry') return 'one_person';
  const o = guided(input.observations);
  const key = trackKey(input.cameraId, o.trackId);
  if (input.state.held[key] !== undefined) return 'decided';
  switch (o.qualityGate) {
    case 'face_size':
      return 'move_closer';
    case 'brightness':
      return o.quality.brightness < cfg.quality.min_brightness ? 'too_dark' : 'too_bright';
    case 'sharpness':
      return 'hold_still';
    default:
      return input.state.sessions[key] !== undefined ? 'verifying' : 'face_detected';
  }
}

/** The person nearest the camera (largest box) is the one being guided. */
function guided(observations: readonly FrameObservation[]): FrameObservation {
  const area = (o: FrameObservation) => o.box[2] * o.box[3];
  return observations.reduce((a, b) => (area(b) > area(a) ? b : a));
}

/** Monotonic instants of the guided person's presence, for the guidance payload (issue 23). */
export interface GuidedPresence {
  presenceSinceMono?: number;
  /** Only while the person is held (state `decided`). */
  heldSinceMono?: number;
}

/** When the guided person's presence began and, if held, since when: {} when there is none yet. */
export function guidedPresence(input: GuidanceInput): GuidedPresence {
  if (input.observations.length === 0) return {};
  const key = trackKey(input.cameraId, guided(input.observations).trackId);
  const h = input.state.held[key];
  if (h) return { presenceSinceMono: h.presenceSinceMono, heldSinceMono: h.heldSinceMono };
  const since = input.state.sessions[key]?.presenceSinceMono ?? input.state.fixing[key]?.presenceSinceMono;
  return since === undefined ? {} : { presenceSinceMono: since };
}

/**
 * Publishes a state when it differs from the last one published, at most once per
 * `minIntervalMs`; a change inside the interval is published at the first frame after it
 * (the newest state then, so a flicker in between is never sent).
 */
export class GuidanceLimiter {
  private published: GuidanceState | null = null;
  private publishedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly minIntervalMs: number) {}

  private publishedKey: string | null = null;

  /**
   * The state to publish now, or null. `key` tells states apart beyond their name (the held
   * person's held_since: \`decided\` for the next person is a change too); default the state.
   */
  offer(state: GuidanceState, nowMs: number, key: string = state): GuidanceState | null {
    if (key === this.publishedKey) return null;
    if (nowMs - this.publishedAt < this.minIntervalMs) return null;
    this.published = state;
    this.publishedKey = key;
    this.publishedAt = nowMs;
    return state;
  }

  get current(): GuidanceState | null {
    return this.published;
  }
}
