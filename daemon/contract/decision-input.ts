/**
 * The contract's view of a fused decision: a SessionDecision (daemon/decision/types.ts) and
 * the model that made it become the DecisionInput that DecisionChannel numbers, signs,
 * audits and publishes (contract/audit/decision-channel.ts).
 */
import type { SessionDecision } from '../decision/types.js';
import { type DecisionInput, decisionScores } from './topics.js';

export interface DecidingModel {
  name: string;
  version: string;
  sha256: string;
}

/** `nowMono`: performance.now() at publish time (for `latency_ms.last_frame_to_publish`). */
export function decisionInput(
  d: SessionDecision,
  model: DecidingModel,
  provider: string,
  nowMono: number,
): DecisionInput {
  return {
    camera_id: d.cameraId,
    track_id: d.trackId,
    decision: d.decision,
    reason: d.reason,
    ...(d.qualityGate ? { quality_gate: d.qualityGate } : {}),
    scores: decisionScores(d.scores),
    frames: d.frames,
    quality: d.quality,
    model: { name: model.name, version: model.version, sha256: model.sha256 },
    execution_provider: provider,
    latency_ms: {
      first_frame_to_decision: Math.round(d.decidedAtMono - d.firstFrameMono),
      last_frame_to_publish: Math.round(nowMono - d.lastFrameMono),
    },
    presence_since: monoToIso(d.presenceSinceMono, nowMono),
    ...(d.decision === 'retry' ? {} : { held_since: monoToIso(d.decidedAtMono, nowMono) }),
  };
}

/** A monotonic instant (performance.now() ms) as wall-clock ISO time, given both clocks now. */
export function monoToIso(mono: number, nowMono: number, nowWallMs: number = Date.now()): string {
  return new Date(Math.round(nowWallMs - (nowMono - mono))).toISOString();
}
