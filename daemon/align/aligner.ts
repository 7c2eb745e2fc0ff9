/**
 * Face alignment, exactly as the model manifest describes it. Python training code
 * (models/fghv/fghv/preprocess.py) does the same operations with the same OpenCV build;
 * test/vectors/alignment.json holds vectors both implementations must reproduce.
 */
import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import type { Point } from '../detect/types.js';

export interface NormalizeSpec {
  mean: number[];
  std: number[];
}

export interface TensorSpec {
  color: 'RGB' | 'BGR';
  normalize: NormalizeSpec;
}

/**
 * Similarity (rotation, uniform scale, translation) from the detected landmarks to the
 * template, as a row-major 2x3 matrix. RANSAC with a reprojection threshold far above any
 * landmark error makes every point an inlier, so the result is the least-squares fit over
 * all five landmarks (OpenCV's refinement step), deterministic and identical in Python.
 */
export function similarityMatrix(landmarks: readonly Point[], template: readonly Point[]): number[] {
  if (landmarks.length !== template.length || landmarks.length < 2) {
    throw new KioskError(
      ErrorCodes.INTERNAL,
      `alignment needs matching point sets (${landmarks.length} vs ${template.length})`,
    );
  }
  const from = landmarks.map(([x, y]) => new cv.Point2(x, y));
  const to = template.map(([x, y]) => new cv.Point2(x, y));
  let result: { out: Mat; inliers: Mat };
  try {
    result = cv.estimateAffinePartial2D(from, to, cv.RANSAC, 1000, 2000, 0.99, 10) as unknown as {
      out: Mat;
      inliers: Mat;
    };
  } catch (e) {
    throw new KioskError(ErrorCodes.INTERNAL, `estimateAffinePartial2D failed: ${asError(e).message}`, {
      cause: e,
    });
  }
  const m = result.out;
  if (m.empty || m.rows !== 2 || m.cols !== 3) {
    throw new KioskError(
      ErrorCodes.INTERNAL,
      'estimateAffinePartial2D found no transform (degenerate landmarks)',
    );
  }
  const rows = m.getDataAsArray() as number[][];
  m.release();
  result.inliers.release();
  return [...(rows[0] as number[]), ...(rows[1] as number[])];
}

/** Warp an 8-bit BGR image with a 2x3 matrix into a width x height crop (bilinear, black border). */
export function warpCrop(bgr: Mat, matrix: readonly number[], width: number, height: number): Mat {
  const m = new cv.Mat([matrix.slice(0, 3), matrix.slice(3, 6)], cv.CV_64F);
  try {
    return bgr.warpAffine(
      m,
      new cv.Size(width, height),
      cv.INTER_LINEAR,
      cv.BORDER_CONSTANT,
      new cv.Vec3(0, 0, 0),
    );
  } finally {
    m.release(); // Mat memory is invisible to V8's GC (core/cv.ts)
  }
}

/**
 * The crop MiniFASNet-style models expect (Silent-Face's CropImage): the detection box scaled
 * by `scale` around its centre (limited so it fits in the image), shifted to lie inside the
 * image rather than padded, then resized to width x height.
 */
export function scaledBoxRect(
  box: readonly [number, number, number, number],
  scale: number,
  imageWidth: number,
  imageHeight: number,
): { x: number; y: number; w: number; h: number } {
  const [bx, by, bw, bh] = box;
  const s = Math.min((imageHeight - 1) / bh, (imageWidth - 1) / bw, scale);
  const newW = bw * s;
  const newH = bh * s;
  const cx = bx + bw / 2;
  const cy = by + bh / 2;
  let x1 = cx - newW / 2;
  let y1 = cy - newH / 2;
  let x2 = cx + newW / 2;
  let y2 = cy + newH / 2;
  if (x1 < 0) {
    x2 -= x1;
    x1 = 0;
  }
  if (y1 < 0) {
    y2 -= y1;
    y1 = 0;
  }
  if (x2 > imageWidth - 1) {
    x1 -= x2 - imageWidth + 1;
    x2 = imageWidth - 1;
  }
  if (y2 > imageHeight - 1) {
    y1 -= y2 - imageHeight + 1;
    y2 = imageHeight - 1;
  }
  const x = Math.max(0, Math.trunc(x1));
  const y = Math.max(0, Math.trunc(y1));
  return { x, y, w: Math.max(1, Math.trunc(x2) - x + 1), h: Math.max(1, Math.trunc(y2) - y + 1) };
}

export function scaledBoxCrop(
  bgr: Mat,
  box: readonly [number, number, number, number],
  scale: number,
  width: number,
  height: number,
): Mat {
  const r = scaledBoxRect(box, scale, bgr.cols, bgr.rows);
  const w = Math.min(r.w, bgr.cols - r.x);
  const h = Math.min(r.h, bgr.rows - r.y);
  const region = bgr.getRegion(new cv.Rect(r.x, r.y, w, h));
  try {
    return region.resize(height, width);
  } finally {
    region.release();
  }
}

/** 8-bit BGR crop -> float32 NCHW tensor (batch 1), channel order and normalisation per the manifest. */
export function toTensor(bgrCrop: Mat, spec: TensorSpec): Float32Array {
  const { rows, cols } = bgrCrop;
  const data = bgrCrop.getData();
  const plane = rows * cols;
  const out = new Float32Array(3 * plane);
  // Output channel c reads BGR byte index src[c].
  const src = spec.color === 'RGB' ? [2, 1, 0] : [0, 1, 2];
  const { mean, std } = spec.normalize;
  for (let c = 0; c < 3; c++) {
    const si = src[c] as number;
    const m = mean[c] ?? 0;
    const inv = 1 / (std[c] ?? 1);
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = ((data[i * 3 + si] as number) - m) * inv;
  }
  return out;
}
