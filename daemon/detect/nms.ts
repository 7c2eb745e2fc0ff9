/**
 * Post-processing shared by every decoder: score threshold, greedy score-sorted NMS, a cap on the
 * number of faces, and clipping to the image. Pure functions on plain arrays.
 */
import type { FaceDetection } from './types.js';

export type Box = [number, number, number, number];

/** Intersection over union of two [x, y, w, h] boxes; 0 when either is empty. */
export function iou(a: Box, b: Box): number {
  const ix = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const iy = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  if (ix <= 0 || iy <= 0) return 0;
  const inter = ix * iy;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy NMS: take the best-scoring box, drop every remaining box overlapping it by more than
 * `iouThreshold`, repeat; stop after `maxFaces` kept. Stable for equal scores (input order wins).
 */
export function nonMaxSuppression(
  dets: FaceDetection[],
  iouThreshold: number,
  maxFaces: number,
): FaceDetection[] {
  const sorted = dets
    .map((d, i) => ({ d, i }))
    .sort((p, q) => q.d.score - p.d.score || p.i - q.i)
    .map((p) => p.d);
  const kept: FaceDetection[] = [];
  for (const d of sorted) {
    if (kept.length >= maxFaces) break;
    if (kept.every((k) => iou(k.box, d.box) <= iouThreshold)) kept.push(d);
  }
  return kept;
}

/** Clip a box to [0, width) x [0, height); null when nothing of it is inside the image. */
export function clipBox(box: Box, width: number, height: number): Box | null {
  const x0 = Math.max(0, box[0]);
  const y0 = Math.max(0, box[1]);
  const x1 = Math.min(width, box[0] + box[2]);
  const y1 = Math.min(height, box[1] + box[3]);
  if (x1 <= x0 || y1 <= y0) return null;
  return [x0, y0, x1 - x0, y1 - y0];
}

/** What a user tunes per detector (config `detector.*`). */
export interface DetectorTuning {
  scoreThreshold: number;
  nmsIou: number;
  maxFaces: number;
}

export interface PostprocessOptions extends DetectorTuning {
  /** Original image size, for clipping. */
  width: number;
  height: number;
}

/**
 * Threshold, NMS, cap, then clip boxes (landmarks are left as predicted: an eye just outside
 * the frame is still the best estimate for alignment). Result sorted by score, best first.
 */
export function postprocess(dets: FaceDetection[], o: PostprocessOptions): FaceDetection[] {
  const passing = dets.filter((d) => d.score >= o.scoreThreshold && Number.isFinite(d.score));
  const out: FaceDetection[] = [];
  for (const d of nonMaxSuppression(passing, o.nmsIou, o.maxFaces)) {
    const box = clipBox(d.box, o.width, o.height);
    if (box) out.push({ ...d, box });
  }
  return out;
}
