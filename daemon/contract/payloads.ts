/**
 * Every payload type of contract version 1 (docs/mqtt-contract.md), in one file, so the AsyncAPI
 * document and its JSON Schemas can be derived from and tested against exactly these types, and
 * the one step from the pipeline's decision to its payload (buildDecisionPayload). The topics
 * they travel on are in topics.ts. Changes within version 1 are additive only.
 */
import { monotonicFactory } from 'ulid';
import type { GuidanceState } from '../decision/guidance.js';
import type {
  DecisionFrames,
  DecisionReason,
  Decision as DecisionVerdict,
  QualityGate,
  SessionDecision,
} from '../decision/types.js';
import type { LinkCounters } from '../mqtt/mqtt-link.js';
import { CONTRACT_VERSION } from './topics.js';

/** Monotonic, so two decisions in the same millisecond still sort in publish order. */
const nextUlid = monotonicFactory();

export type Availability = 'online' | 'offline';

/** The decision values are the decision stage's own (one definition, daemon/decision/types.ts). */
export type { Decision as DecisionVerdict, DecisionReason, QualityGate } from '../decision/types.js';

export interface ModelRef {
  name: string;
  version: string;
  sha256: string;
}

/** The scores a decision carries, under the contract's names. */
export interface DecisionScores {
  p_real: number | null;
  var: number | null;
  delta_kl: number | null;
}

/** A model's score map under the contract's names (MiniFASNet calls p_real `p_live`). */
export function decisionScores(s: Record<string, number>): DecisionScores {
  return { p_real: s.p_real ?? s.p_live ?? null, var: s.var ?? null, delta_kl: s.delta_kl ?? null };
}

export interface DecisionPayload {
  v: typeof CONTRACT_VERSION;
  /** ULID: unique, sortable by time. */
  id: string;
  /** +1 per decision, survives restarts (state_dir/seq). */
  seq: number;
  ts: string;
  /** ts + decision_expiry_s: a gate must ignore the decision after this instant. */
  expires_at: string;
  device_id: string;
  camera_id: string;
  track_id: number;
  decision: DecisionVerdict;
  reason: DecisionReason;
  quality_gate?: QualityGate;
  scores: DecisionScores;
  frames: DecisionFrames;
  quality: { face_px: number | null; sharpness: number | null; brightness: number | null };
  model: ModelRef;
  execution_provider: string;
  latency_ms: { first_frame_to_decision: number; last_frame_to_publish: number };
  /**
   * When this person's presence began (their first frame in view; earlier than the session
   * when they were told to fix something and decided again). A new person: a new value.
   */
  presence_since?: string;
  /** accept and reject only: the person is held from this instant (no second decision while they stay). */
  held_since?: string;
  /** Under the signature: `live` on `<camera>/decision`, `audit` on the audit copy. Only `live` may open a gate. */
  delivery: 'live' | 'audit';
  /** Base64 Ed25519 signature over the canonical JSON of every other field except `replayed` (daemon/contract/signing). */
  sig?: string;
}

export interface SeqSource {
  next(): number;
}

/** Who decided: the liveness model in use at publish time and its execution provider. */
export interface DecidedBy {
  model: ModelRef;
  execution_provider: string;
}

export interface DecisionEnvelope {
  deviceId: string;
  seq: SeqSource;
  expiryS: number;
  /** Wall clock, ms since the epoch (injected so tests fix it). */
  now?: () => number;
  /** Monotonic clock, the pipeline's (performance.now()); injected so tests fix it. */
  nowMono?: () => number;
}

/** A monotonic instant (performance.now() ms) as wall-clock ISO time, given both clocks now. */
export function monoToIso(mono: number, nowMono: number, nowWallMs: number = Date.now()): string {
  return new Date(Math.round(nowWallMs - (nowMono - mono))).toISOString();
}

/**
 * The one step from the pipeline's decision (daemon/decision/types.ts: monotonic instants, the
 * model's own score names) to the contract's payload: contract score names, wall-clock times,
 * and the envelope (id, seq, ts, expires_at, `delivery: live`; the audit copy is re-signed as
 * `audit`). `quality_gate` only with reason low_quality; `held_since` only for accept and reject.
 */
export function buildDecisionPayload(
  d: SessionDecision,
  by: DecidedBy,
  env: DecisionEnvelope,
): DecisionPayload {
  const nowMs = (env.now ?? Date.now)();
  const nowMono = (env.nowMono ?? (() => performance.now()))();
  const iso = (mono: number) => monoToIso(mono, nowMono, nowMs);
  return {
    v: CONTRACT_VERSION,
    id: nextUlid(nowMs),
    seq: env.seq.next(),
    ts: new Date(nowMs).toISOString(),
    expires_at: new Date(nowMs + env.expiryS * 1000).toISOString(),
    device_id: env.deviceId,
    camera_id: d.cameraId,
    track_id: d.trackId,
    decision: d.decision,
    reason: d.reason,
    scores: decisionScores(d.scores),
    frames: d.frames,
    quality: d.quality,
    model: { name: by.model.name, version: by.model.version, sha256: by.model.sha256 },
    execution_provider: by.execution_provider,
    latency_ms: {
      first_frame_to_decision: Math.round(d.decidedAtMono - d.firstFrameMono),
      last_frame_to_publish: Math.round(nowMono - d.lastFrameMono),
    },
    presence_since: iso(d.presenceSinceMono),
    ...(d.decision === 'retry' ? {} : { held_since: iso(d.decidedAtMono) }),
    delivery: 'live',
    ...(d.reason === 'low_quality' && d.qualityGate ? { quality_gate: d.qualityGate } : {}),
  };
}

export interface GuidancePayload {
  v: typeof CONTRACT_VERSION;
  ts: string;
  device_id: string;
  camera_id: string;
  state: GuidanceState;
  faces: number;
  /** When the presence of the person being guided began (absent with no face or no presence yet). */
  presence_since?: string;
  /** State `decided`: since when this person has been held; a new value is a new person. */
  held_since?: string;
}

export interface InfoPayload {
  v: typeof CONTRACT_VERSION;
  device_id: string;
  software: { name: string; version: string };
  model: (ModelRef & { family: string; purpose: string }) | null;
  detector: { name: string; model: string | null } | null;
  /** The execution provider actually in use, not the one requested. */
  execution_provider: string | null;
  cameras: { id: string; kind: string; source: string }[];
  /** Base64 of the raw 32-byte Ed25519 public key that signs decisions. */
  decision_public_key: string | null;
  capabilities: string[];
  /** Includes the threshold overrides in force. */
  config_hash: string | null;
  /** Thresholds changed by set_thresholds from the model's own (null: none). */
  threshold_overrides?: Record<string, number> | null;
  /** The broker in use (one of mqtt.url's, credentials redacted); absent or null before the first connect. */
  broker?: string | null;
  /** The model's thresholds before any override (manifest + config file). */
  model_thresholds?: Record<string, number> | null;
}

export interface LatencyFigures {
  p50: number | null;
  p95: number | null;
  /** Samples the figures are computed from. */
  n: number;
}

/** A camera that is down: for how long, and when the next open attempt is (all null while up). */
export interface CameraRecoveryFigures {
  down_s: number | null;
  /** 0: an attempt is in progress; null: waiting for the source to reappear (or up). */
  next_attempt_in_s: number | null;
  /** 'source': watched, reopened the moment it is back; 'backoff': there but failing to open. */
  waiting_for: 'source' | 'backoff' | 'opening' | null;
}

export interface CameraHealth extends Partial<CameraRecoveryFigures> {
  id: string;
  state: string;
  capture_fps: number | null;
}

/** The link's counters, carried as they are in `health.mqtt` (defined by the transport, daemon/mqtt/mqtt-link.ts). */
export type MqttCounters = LinkCounters;

export interface SystemFigures {
  cpu_load_pct: number | null;
  mem_used_pct: number | null;
  process_rss_mb: number | null;
  cpu_temp_c: number | null;
  gpu: { name: string; util_pct: number | null; mem_used_mb: number | null; temp_c: number | null }[] | null;
}

export interface HealthPayload {
  v: typeof CONTRACT_VERSION;
  ts: string;
  device_id: string;
  uptime_s: number;
  fps: { capture: number; processed: number; dropped: number };
  /** Per pipeline stage (capture, detect, align, liveness, decide, publish...). */
  latency_ms: Record<string, LatencyFigures>;
  system: SystemFigures;
  mqtt: MqttCounters;
  /** Durable audit outbox counters (null when there is none). */
  outbox: { pending: number; oldest_age_s: number | null } | null;
  cameras: CameraHealth[];
  model: ModelRef | null;
  execution_provider: string | null;
}

/** Commands: request and response envelopes (daemon/contract/commands). */
export interface CommandRequest {
  transaction?: unknown;
  [key: string]: unknown;
}

export interface CommandResponse {
  transaction: unknown;
  status: 'ok' | 'error';
  data: unknown;
  error?: { code: string; message: string };
}
