/**
 * Face quality measures and gates. A frame that fails a gate is not sent to the liveness
 * model: blur, darkness or a tiny face make its scores meaningless, and the person is better
 * served by "move closer / hold still" than by a reject.
 */
import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import type { Box, FaceQuality, QualityConfig, QualityGate } from './types.js';

/**
 * Side of the square the face is resized to before measuring sharpness, so the measure does
 * not grow with face size (a big face has more edges, not sharper ones).
 */
export const SHARPNESS_SIDE_PX = 112;

/**
 * Laplacian variance mapped to 0..1 by v / (v + K): saturating, monotonic, 0.5 at v = K.
 * K = 500 was calibrated on the five images of ../shared/data/images (face crops resized to
 * 112 px, measured with this code): sharp faces 0.35..0.76 (v = 273..1604); the same faces with
 * a Gaussian blur of sigma = face_px / 50 0.015..0.025 (v = 8..13). The default min_sharpness
 * 0.05 (v = 26) passes every sharp face and fails every heavily blurred one; a mild blur
 * (sigma 1 on a 228 px face: 0.52) still passes.
 */
export const SHARPNESS_HALF_POINT = 500;

export function sharpnessFromLaplacianVariance(variance: number): number {
  if (!(variance > 0)) return 0;
  return variance / (variance + SHARPNESS_HALF_POINT);
}

/**
 * Measure the face at `box` in a whole image (the box is clipped to the image); a box with
 * less than 2x2 pixels inside the image gets sharpness and brightness 0.
 */
export function measureFaceInImage(image: Mat, box: Box): FaceQuality {
  const x = Math.max(0, Math.floor(box[0]));
  const y = Math.max(0, Math.floor(box[1]));
  const w = Math.min(image.cols - x, Math.ceil(box[2]));
  const h = Math.min(image.rows - y, Math.ceil(box[3]));
  if (w < 2 || h < 2) return { face_px: Math.min(box[2], box[3]), sharpness: 0, brightness: 0 };
  const region = image.getRegion(new cv.Rect(x, y, w, h));
  try {
    return measureQuality(region, box);
  } finally {
    region.release();
  }
}

/**
 * Measure one face. `bgrFace` is the face crop (8-bit BGR or grey); `box` is the detected box,
 * whose shorter side is face_px.
 */
export function measureQuality(bgrFace: Mat, box: Box): FaceQuality {
  if (bgrFace.empty || bgrFace.rows < 2 || bgrFace.cols < 2) {
    throw new KioskError(ErrorCodes.INTERNAL, 'measureQuality needs a face crop of at least 2x2 pixels', {
      details: { rows: bgrFace.rows, cols: bgrFace.cols },
    });
  }
  try {
    const grey = bgrFace.channels === 1 ? bgrFace : bgrFace.bgrToGray();
    // INTER_AREA averages when shrinking; when enlarging it would act like nearest-neighbour
    // and its blocky edges would inflate the Laplacian, so enlarge bilinearly.
    const shrinking = Math.min(grey.rows, grey.cols) >= SHARPNESS_SIDE_PX;
    const small = grey.resize(
      SHARPNESS_SIDE_PX,
      SHARPNESS_SIDE_PX,
      0,
      0,
      shrinking ? cv.INTER_AREA : cv.INTER_LINEAR,
    );
    // Border given explicitly: some filters of @u4/opencv4nodejs default to BORDER_CONSTANT,
    // whose black frame would add edges that are not in the face.
    const laplacian = small.laplacian(cv.CV_64F, 1, 1, 0, cv.BORDER_REFLECT_101);
    const sd = laplacian.meanStdDev().stddev.at(0, 0) as number;
    // Mat#mean() returns a Vec4 whose field order does not follow the channels; use meanStdDev.
    const meanGrey = small.meanStdDev().mean.at(0, 0) as number;
    return {
      face_px: Math.max(0, Math.round(Math.min(box[2], box[3]))),
      sharpness: sharpnessFromLaplacianVariance(sd * sd),
      brightness: meanGrey / 255,
    };
  } catch (e) {
    throw new KioskError(ErrorCodes.INTERNAL, `quality measurement failed: ${asError(e).message}`, {
      cause: e,
    });
  }
}

/**
 * The first failing gate in the order face_size, brightness, sharpness; null when all pass.
 * Brightness comes before sharpness because the Laplacian measures contrast: a dark or
 * washed-out face also measures blurry (T1 at gain 0.2: brightness 0.09, sharpness 0.048), and
 * "more light" is then the advice that helps.
 */
export function qualityGate(q: FaceQuality, cfg: QualityConfig): QualityGate | null {
  if (!(q.face_px >= cfg.min_face_px)) return 'face_size';
  if (!(q.brightness >= cfg.min_brightness && q.brightness <= cfg.max_brightness)) return 'brightness';
  if (!(q.sharpness >= cfg.min_sharpness)) return 'sharpness';
  return null;
}
