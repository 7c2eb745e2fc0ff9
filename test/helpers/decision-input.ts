import type { DecidedBy } from '../../daemon/contract/payloads.js';
import type { SessionDecision } from '../../daemon/decision/types.js';

/** The model and provider the tests' decisions name. */
export const DECIDED_BY: DecidedBy = {
  model: { name: 'm', version: '1', sha256: 'a'.repeat(64) },
  execution_provider: 'cpu',
};

/**
 * A decision as the pipeline hands it to the contract: a verified accept unless `over` says
 * otherwise; its frames lie 300 ms to 1 ms before the call (performance.now() clock).
 */
export function sessionDecision(over: Partial<SessionDecision> = {}): SessionDecision {
  const now = performance.now();
  return {
    cameraId: 'front',
    trackId: 1,
    decision: 'accept',
    reason: 'live_verified',
    scores: { p_real: 0.97, var: 0.004, delta_kl: -3.1 },
    frames: { seen: 9, inferred: 8, live: 7, verified: 7 },
    quality: { face_px: 182, sharpness: 0.71, brightness: 0.52 },
    firstFrameMono: now - 300,
    lastFrameMono: now - 1,
    decidedAtMono: now - 1,
    presenceSinceMono: now - 300,
    ...over,
  };
}

/** A reject: every inferred frame judged a spoof. */
export function spoofReject(over: Partial<SessionDecision> = {}): SessionDecision {
  return sessionDecision({
    decision: 'reject',
    reason: 'spoof_detected',
    scores: { p_real: 0.1, var: 0.02, delta_kl: 2.5 },
    frames: { seen: 5, inferred: 5, live: 0, verified: 0 },
    ...over,
  });
}
