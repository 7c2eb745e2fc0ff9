/**
 * The per-face step of the pipeline: measure the face's quality, apply the quality gates, and,
 * when the face passes them, align it and run the liveness model. The camera pipeline runs it
 * for every tracked face of a frame; `classify` runs it on still images, so both judge a face
 * the same way.
 */
import type { Mat } from '../../core/cv.js';
import { measureFaceInImage, qualityGate, SHARPNESS_SIDE_PX } from '../decision/quality.js';
import type { FaceQuality, QualityConfig, QualityGate } from '../decision/types.js';
import { scaleDetection } from '../detect/scale.js';
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
 * decode 'reduced': the liveness crop's region must span at least this many times the
 * model's input side in a reduced decode for the per-face step to read it instead of the
 * full one (the crop then still shrinks, never enlarges).
 */
export const REDUCED_CROP_MARGIN = 2;

/**
 * The largest JPEG decode scale (<= `max`, 1 = full) whose image still serves every face's
 * per-face step: the face keeps SHARPNESS_SIDE_PX pixels on its shorter side (the sharpness
 * measure shrinks it, as on a full frame) and the liveness crop REDUCED_CROP_MARGIN times the
 * model's input. `faces` in frame pixels.
 */
export function reducedFaceScale(
  liveness: Pick<LivenessModel, 'cropMargin'>,
  frameWidth: number,
  frameHeight: number,
  faces: FaceDetection[],
  max: number,
): 1 | 2 | 4 | 8 {
  for (let s = max; s > 1; s /= 2) {
    const w = Math.ceil(frameWidth / s);
    const h = Math.ceil(frameHeight / s);
    const serves = faces.every((f) => {
      const local = scaleDetection(f, 1 / s);
      return (
        Math.min(local.box[2], local.box[3]) >= SHARPNESS_SIDE_PX &&
        liveness.cropMargin(local, w, h) >= REDUCED_CROP_MARGIN
      );
    });
    if (serves) return s as 2 | 4 | 8;
  }
  return 1;
}

/**
 * `quality`: the gates (config `quality`), null to skip them; `classify: false` measures and
 * gates only (a person already decided is not classified again).
 */
export async function faceStep(
  image: Mat,
  face: FaceDetection,
  liveness: Pick<LivenessModel, 'classify'>,
  opts: { quality: QualityConfig | null; classify?: boolean; scale?: number },
): Promise<FaceStepResult> {
  // `image` may be a reduced JPEG decode (1/scale of the frame; `face` is in frame pixels):
  // everything is read on it, and the face's size is still the frame's.
  const scale = opts.scale ?? 1;
  const local = scale === 1 ? face : scaleDetection(face, 1 / scale);
  const measured = measureFaceInImage(image, local.box);
  const quality = scale === 1 ? measured : { ...measured, face_px: Math.min(face.box[2], face.box[3]) };
  const gate = opts.quality === null ? null : qualityGate(quality, opts.quality);
  const run = gate === null && opts.classify !== false;
  return { quality, gate, liveness: run ? await liveness.classify(image, local) : null };
}
