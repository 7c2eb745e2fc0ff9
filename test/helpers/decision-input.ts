import type { DecisionInput } from '../../daemon/contract/topics.js';

/** A decision as the pipeline hands it to the contract: a verified accept unless `over` says otherwise. */
export function decisionInput(over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    camera_id: 'front',
    track_id: 1,
    decision: 'accept',
    reason: 'live_verified',
    scores: { p_real: 0.97, var: 0.004, delta_kl: -3.1 },
    frames: { seen: 9, inferred: 8, live: 7, verified: 7 },
    quality: { face_px: 182, sharpness: 0.71, brightness: 0.52 },
    model: { name: 'm', version: '1', sha256: 'a'.repeat(64) },
    execution_provider: 'cpu',
    latency_ms: { first_frame_to_decision: 300, last_frame_to_publish: 1 },
    ...over,
  };
}

/** A reject: every inferred frame judged a spoof. */
export function spoofReject(over: Partial<DecisionInput> = {}): DecisionInput {
  return decisionInput({
    decision: 'reject',
    reason: 'spoof_detected',
    scores: { p_real: 0.1, var: 0.02, delta_kl: 2.5 },
    frames: { seen: 5, inferred: 5, live: 0, verified: 0 },
    ...over,
  });
}
