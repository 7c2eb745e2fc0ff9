/**
 * Types of the decision stage: tracking, quality gates and per-person fusion. The value sets
 * mirror the MQTT contract (docs/mqtt-contract.md) and daemon/contract/payloads.ts; the config types
 * derive from the one schema so defaults and validation stay in one place.
 */
import type { Config } from '../../config/schema.js';
import type { Look } from './appearance.js';

/** [x, y, w, h] in pixels of the original image. */
export type Box = [number, number, number, number];

export type QualityConfig = Config['quality'];
export type DecisionConfig = Config['decision'];

export interface FaceQuality {
  /** Shorter side of the detected box, pixels. */
  face_px: number;
  /** 0..1, see quality.ts for the mapping from the Laplacian variance. */
  sharpness: number;
  /** Mean grey level / 255. */
  brightness: number;
}

/** Checked in the order face_size, brightness, sharpness; the first one that fails is the reason. */
export type QualityGate = 'face_size' | 'sharpness' | 'brightness';

/** Per-frame verdict, computed by the liveness stage from the manifest's thresholds. */
export type FrameVerdict = 'live' | 'spoof' | 'uncertain';

export type Decision = 'accept' | 'reject' | 'retry';

/** Closed enum of the MQTT contract. */
export type DecisionReason =
  | 'live_verified'
  | 'spoof_detected'
  | 'uncertain'
  | 'low_quality'
  | 'face_lost'
  | 'multiple_faces'
  | 'timeout';

export interface DecisionFrames {
  seen: number;
  inferred: number;
  live: number;
  /** Same as `live`: the version-1 field, kept so existing consumers keep working. */
  verified: number;
}

/** One tracked face in one frame, as the pipeline saw it. */
export interface FrameObservation {
  trackId: number;
  box: Box;
  /** Monotonic capture time of the frame, ms. */
  capturedMono: number;
  quality: FaceQuality;
  qualityGate: QualityGate | null;
  /** null when the quality gate failed (or no inference ran for another reason). */
  verdict: FrameVerdict | null;
  scores: Record<string, number> | null;
  /** Faces the detector reported in this frame (this one included). */
  facesInView: number;
  /**
   * The face's appearance (appearance.ts), for telling a returning person from the next one;
   * null or absent: not described, and then never taken for the person who was there.
   */
  look?: Look | null;
}

export interface FusionInput {
  /** Monotonic time of this call, ms: the only clock the fuser knows. */
  nowMs: number;
  cameraId: string;
  observations: FrameObservation[];
  /** Tracks the tracker declared lost in this step. */
  lostTrackIds: number[];
}

export interface SessionDecision {
  cameraId: string;
  trackId: number;
  decision: Decision;
  reason: DecisionReason;
  /** Present only when reason is 'low_quality'. */
  qualityGate?: QualityGate;
  /**
   * seen: frames of the session; inferred: frames with a verdict (quality gates passed);
   * live: frames whose verdict was live; verified: = live (the contract's version-1 name).
   */
  frames: DecisionFrames;
  /** Mean of each score over the inferred frames of the session ({} when none ran). */
  scores: Record<string, number>;
  /** Quality of the session's last frame. */
  quality: FaceQuality;
  firstFrameMono: number;
  lastFrameMono: number;
  decidedAtMono: number;
  /**
   * When this person's presence began: the first frame of their first session in view. Earlier
   * than firstFrameMono when they were told to fix something (retry) and were then decided again.
   */
  presenceSinceMono: number;
}

/** One open person-session on one track. Plain data so the state can be logged or snapshotted. */
export interface TrackSession {
  readonly cameraId: string;
  readonly trackId: number;
  readonly firstFrameMono: number;
  readonly lastFrameMono: number;
  readonly seen: number;
  readonly gateFailures: Readonly<Record<QualityGate, number>>;
  /** The last `frames` verdicts, oldest first. */
  readonly window: readonly FrameVerdict[];
  readonly live: number;
  readonly spoof: number;
  readonly uncertain: number;
  readonly scoreSums: Readonly<Record<string, number>>;
  readonly scoreCounts: Readonly<Record<string, number>>;
  readonly lastQuality: FaceQuality;
  /** Box of the session's last frame. */
  readonly lastBox: Box;
  /** The newest look of the session's face (null: none could be described yet). */
  readonly lastLook: Look | null;
  /** See SessionDecision.presenceSinceMono. */
  readonly presenceSinceMono: number;
}

/** A person who got an accept or a reject and is held (one decision per presence). */
export interface HeldPresence {
  readonly decision: Decision;
  /** Where the person was last seen, and when (monotonic ms). */
  readonly box: Box;
  readonly seenMono: number;
  /** Their newest look: a face back after a gap is the same person only if it matches. */
  readonly look: Look | null;
  /** When the hold began (the decision), and when the presence began. */
  readonly heldSinceMono: number;
  readonly presenceSinceMono: number;
}

/** A person who got a retry for a reason they can fix (face size, light, sharpness, crowd). */
export interface FixableRetry {
  readonly presenceSinceMono: number;
  /** Since when every frame of the track passed (no gate failed, one face); null: not now. */
  readonly okSinceMono: number | null;
}

export interface FusionState {
  /** Open sessions by track key (camera id and track id). */
  readonly sessions: Readonly<Record<string, TrackSession>>;
  /** Track key -> monotonic ms before which a decided track starts no new session. */
  readonly cooldownUntil: Readonly<Record<string, number>>;
  /**
   * redecide 'presence': track key -> the person held after an accept or reject. The track starts
   * no new session while the same person stays (a face back after a gap of presence_gap_ms or
   * more must match their look), until it is lost or the presence is released (request/verify).
   */
  readonly held: Readonly<Record<string, HeldPresence>>;
  /**
   * Held people whose track was just lost, by their old track key: a new track starting in the
   * same place (IoU >= track_iou) before `until` whose look matches is the same person (a
   * detector or tracker hiccup, a step out and back) and stays held; anyone else is new.
   */
  readonly left: Readonly<Record<string, HeldPresence & { readonly until: number }>>;
  /**
   * redecide 'presence': tracks waiting after a fixable retry. Once every frame has passed for
   * retry_settle_ms, the person is decided again without waiting out retry_interval_ms.
   */
  readonly fixing: Readonly<Record<string, FixableRetry>>;
}
