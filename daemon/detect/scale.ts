/**
 * Detections made on a reduced image (a scaled JPEG decode, drivers/camera/jpeg.ts) placed
 * back on the full-resolution frame, where the quality gates and the liveness crop read them.
 */
import type { FaceDetection, Landmarks5 } from './types.js';

/** `face` found on an image `factor` times smaller, in full-resolution pixels. */
export function scaleDetection(face: FaceDetection, factor: number): FaceDetection {
  const [x, y, w, h] = face.box;
  return {
    box: [x * factor, y * factor, w * factor, h * factor],
    landmarks: face.landmarks.map(([lx, ly]) => [lx * factor, ly * factor]) as Landmarks5,
    score: face.score,
  };
}
