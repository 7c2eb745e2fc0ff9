/**
 * The per-face step of the pipeline: measure the face's quality, apply the quality gates, and,
 * when the face passes them, align it and run the liveness model. The camera pipeline runs it
 * for every tracked face of a frame; `classify` runs it on still images, so both judge a face
 * the same way.
 */
import type { Mat } from '../../core/cv.js';
import { measureFaceInImage, qualityGate } from '../decision/quality.js';
import type { FaceQuality, QualityConfig, QualityGate } from '../decision/types.js';
import type { FaceDetection } from '../detect/types.js';
import type { LivenessModel, LivenessResult } from '../liveness/liveness-model.js';

export interface FaceStepResult {
  quality: FaceQuality;
  /** The first quality gate the face failed, null when it passed (or gates were skipped). */
  gate: QualityGate | null;
  /** The liveness result (align + infer), null when a gate failed or classification was not asked. */
  liveness: LivenessResult | null;
}

/**
 * `quality`: the gates (config `quality`), null to skip them; `classify: false` measures and
 * gates only (a person already decided is not classified again).
 */
export async function faceStep(
  image: Mat,
  face: FaceDetection,
  liveness: Pick<LivenessModel, 'classify'>,
  opts: { quality: QualityConfig | null; classify?: boolean },
): Promise<FaceStepResult> {
  const quality = measureFaceInImage(image, face.box);
  const gate = opts.quality === null ? null : qualityGate(quality, opts.quality);
  const run = gate === null && opts.classify !== false;
  return { quality, gate, liveness: run ? await liveness.classify(image, face) : null };
}
