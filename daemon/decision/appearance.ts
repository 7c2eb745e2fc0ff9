/**
 * Is the face in view the person who was there a moment ago? One decision per presence must
 * not hold a spot: at a gate the next person steps into the same place within a second. The
 * pipeline already has the face's five landmarks, so a face is described by its appearance
 * after alignment: the face warped by a similarity transform onto the ArcFace landmark template
 * at 64x64 grey, histogram-equalised (light), described by a HOG descriptor (OpenCV: 8x8 cells,
 * 16x16 blocks, 9 orientations, 1764 values, each block L2-Hys normalised). Two looks are the
 * same person when their distance (Euclidean over sqrt(number of blocks), 0..1) is at most
 * SAME_PERSON_MAX_DISTANCE.
 *
 * This is not face recognition: it tells apart two people who step in front of one camera a
 * moment apart, under the same light, and it is asked nothing else. Measured on the shared
 * photos and the sample video's portraits in bench/identity.md (with landmark geometry as the
 * alternative). Every doubt fails safe, to "a new person" (decided anew): a face that cannot be
 * described (too small, landmarks degenerate) has no look, and a missing look is never the same
 * person. A second decision for the same person is a nuisance; none for the next person stops
 * the queue.
 */
import { cv, type Mat } from '../../core/cv.js';
import { similarityMatrix, warpCrop } from '../align/aligner.js';
import type { Landmarks5, Point } from '../detect/types.js';

/** A face's appearance descriptor; null when the face could not be described. */
export type Look = Float32Array;

/** Side of the aligned grey face the descriptor is computed on, pixels. */
export const LOOK_SIDE = 64;

/** Faces whose eyes are closer than this (pixels of the frame) are not described: too little detail. */
export const LOOK_MIN_EYE_PX = 12;

/**
 * Largest distance at which two looks are the same person. bench/identity.md (120 faces of 5
 * people, BlazeFace landmarks): same person at most 0.41 (p99 0.33), different people from
 * 0.55 up (p1 0.57); the threshold sits in the gap, nearer the same-person side than the middle
 * would be, so more of any doubt goes to "new person".
 */
export const SAME_PERSON_MAX_DISTANCE = 0.45;

/** ArcFace/InsightFace 112x112 template (the order of Landmarks5), scaled to LOOK_SIDE. */
const TEMPLATE: readonly Point[] = (
  [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
  ] as const
).map(([x, y]) => [(x * LOOK_SIDE) / 112, (y * LOOK_SIDE) / 112] as Point);

let hog: InstanceType<typeof cv.HOGDescriptor> | null = null;
function descriptor(): InstanceType<typeof cv.HOGDescriptor> {
  hog ??= new cv.HOGDescriptor({
    winSize: new cv.Size(LOOK_SIDE, LOOK_SIDE),
    blockSize: new cv.Size(16, 16),
    blockStride: new cv.Size(8, 8),
    cellSize: new cv.Size(8, 8),
    nbins: 9,
  });
  return hog;
}

/** Blocks in the descriptor: each is L2-normalised to at most 1, so distances scale by sqrt(blocks). */
const BLOCKS = ((LOOK_SIDE - 16) / 8 + 1) ** 2;

/**
 * The look of the face with these landmarks in an 8-bit BGR frame, or null when it cannot be
 * described (eyes too close, degenerate landmarks, any OpenCV failure): never throws.
 */
export function faceLook(bgr: Mat, landmarks: Landmarks5): Look | null {
  const [re, le] = landmarks;
  if (!(Math.hypot(le[0] - re[0], le[1] - re[1]) >= LOOK_MIN_EYE_PX)) return null;
  if (!landmarks.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) return null;
  let crop: Mat | null = null;
  let grey: Mat | null = null;
  let eq: Mat | null = null;
  try {
    crop = warpCrop(bgr, similarityMatrix(landmarks, TEMPLATE), LOOK_SIDE, LOOK_SIDE);
    grey = crop.channels === 1 ? crop : crop.bgrToGray();
    eq = grey.equalizeHist();
    const values = descriptor().compute(eq);
    if (values.length !== BLOCKS * 36 || !values.every(Number.isFinite)) return null;
    return Float32Array.from(values);
  } catch {
    return null;
  } finally {
    eq?.release();
    if (grey && grey !== crop) grey.release();
    crop?.release();
  }
}

/** 0 (identical) .. 1; Infinity when either look is missing or they differ in length. */
export function lookDistance(a: Look | null | undefined, b: Look | null | undefined): number {
  // Only real descriptors compare: a look that went through JSON (a plain object) never matches.
  if (!(a instanceof Float32Array && b instanceof Float32Array) || a.length !== b.length || a.length === 0)
    return Number.POSITIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    sum += d * d;
  }
  return Math.sqrt(sum / BLOCKS);
}

/** Same person? Only when both looks exist and are close: every doubt is "no" (decide anew). */
export function samePerson(a: Look | null | undefined, b: Look | null | undefined): boolean {
  return lookDistance(a, b) <= SAME_PERSON_MAX_DISTANCE;
}
