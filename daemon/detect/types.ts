import type { DetectorName } from '../../config/schema.js';
import type { Mat } from '../../core/cv.js';

export type Point = [number, number];

/**
 * Five landmarks in this fixed order (the order of YuNet and of the ArcFace/InsightFace
 * alignment templates), in pixels of the original image:
 * 0 right eye (the subject's; left in the image), 1 left eye, 2 nose tip,
 * 3 right mouth corner, 4 left mouth corner.
 */
export type Landmarks5 = [Point, Point, Point, Point, Point];

export interface FaceDetection {
  /** [x, y, w, h] in pixels of the original image. */
  box: [number, number, number, number];
  landmarks: Landmarks5;
  score: number;
}

export type { DetectorName };

export interface FaceDetector {
  /** Its name in the detector table (registry.ts). */
  readonly name: string;
  /** Network input size. */
  readonly inputWidth: number;
  readonly inputHeight: number;
  /** Execution provider the model runs on ('cpu', 'cuda', ...). */
  readonly provider: string;
  /** Path of the ONNX file in use, for logs and `info`. */
  readonly model: string;
  /** Detect faces in an 8-bit BGR image; results sorted by score, NMS applied. */
  detect(image: Mat): Promise<FaceDetection[]>;
  close(): Promise<void>;
}
