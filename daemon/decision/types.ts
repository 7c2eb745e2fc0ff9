/**
 * Types of the decision stage: tracking, quality gates and per-person fusion. The value sets
 * mirror the MQTT contract (docs/mqtt-contract.md) and daemon/contract/topics.ts; the config types
 * derive from the one schema so defaults and validation stay in one place.
 */
import type { Config } from '../../config/schema.js';

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
}

export interface FusionState {
  /** Open sessions by track key (camera id and track id). */
  readonly sessions: Readonly<Record<string, TrackSession>>;
  /** Track key -> monotonic ms before which a decided track starts no new session. */
  readonly cooldownUntil: Readonly<Record<string, number>>;
  /**
   * redecide 'presence': track key -> the accept or reject that person got. The track starts no
   * new session until it is lost or the presence is released (request/verify).
   */
  readonly held: Readonly<Record<string, Decision>>;
  /** Where each held person was last seen (their track's last box). */
  readonly heldBox: Readonly<Record<string, Box>>;
  /**
   * Held people whose track was just lost, by their old track key: a new track starting in the
   * same place (IoU >= track_iou) before `until` is the same person (a detector or tracker
   * hiccup, a frame gap under load) and stays held.
   */
  readonly left: Readonly<Record<string, { decision: Decision; box: Box; until: number }>>;
}
