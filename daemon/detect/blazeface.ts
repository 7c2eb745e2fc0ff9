/**
 * MediaPipe BlazeFace on ONNX Runtime (the ONNX files from keijiro's npm package, see
 * models/blazeface/README.md). The decode follows keijiro's Postprocess1 shader without its
 * VFlip (a Unity texture convention; our images are top-down).
 *
 * 896 anchors: a 16x16 grid with 2 anchors per cell, then an 8x8 grid with 6 per cell, centred
 * at ((col + 0.5) / cells, (row + 0.5) / cells) in normalised input coordinates. Per anchor the
 * network gives a score logit and 16 offsets in input pixels: box centre (x, y), size (w, h),
 * then six keypoints. The same layout serves the 128 px front and the 256 px back model.
 */

import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { OrtSession, WireTensor } from '../inference/inference-worker.js';
import type { TensorLayout } from './letterbox.js';
import type { DetectorTuning } from './nms.js';
import { type InputSize, OnnxDetector } from './onnx-detector.js';
import type { FaceDetection, Landmarks5, Point } from './types.js';

const LAYERS = [
  { cells: 16, perCell: 2 },
  { cells: 8, perCell: 6 },
] as const;
export const BLAZEFACE_ANCHORS = 896;
const VALUES_PER_ANCHOR = 16;

/** Anchor centres, normalised to [0, 1], as [x0, y0, x1, y1, ...] in the network's output order. */
export function blazeFaceAnchors(): Float32Array {
  const out = new Float32Array(BLAZEFACE_ANCHORS * 2);
  let i = 0;
  for (const { cells, perCell } of LAYERS) {
    for (let row = 0; row < cells; row++) {
      for (let col = 0; col < cells; col++) {
        for (let a = 0; a < perCell; a++) {
          out[i++] = (col + 0.5) / cells;
          out[i++] = (row + 0.5) / cells;
        }
      }
    }
  }
  return out;
}
const ANCHORS = blazeFaceAnchors();

/** Mouth half-width / eye distance of the ArcFace 112x112 template: (70.73 - 41.55) / 2 / 35.24. */
export const MOUTH_HALF_WIDTH_PER_EYE_DISTANCE = 0.415;

/**
 * BlazeFace's six keypoints -> the daemon's five landmarks. Keypoint order (checked on
 * hopper.jpg and T1.jpg): 0 subject's right eye (image-left), 1 left eye, 2 nose tip,
 * 3 mouth centre, 4 right ear tragion, 5 left ear tragion. Eyes and nose are used as they are;
 * BlazeFace has no mouth corners, so they are estimated as the mouth centre -/+ 0.415 x the
 * eye vector (left eye - right eye), the ArcFace template's mouth-width / eye-distance ratio
 * (29.2 / 35.2 / 2). This keeps the mouth parallel to the eye line, so roll is preserved; the
 * ears are unused.
 */
export function blazeKeypointsToLandmarks5(kps: Point[]): Landmarks5 {
  const [re, le, nose, mouth] = kps as [Point, Point, Point, Point];
  const k = MOUTH_HALF_WIDTH_PER_EYE_DISTANCE;
  const dx = (le[0] - re[0]) * k;
  const dy = (le[1] - re[1]) * k;
  return [re, le, nose, [mouth[0] - dx, mouth[1] - dy], [mouth[0] + dx, mouth[1] + dy]];
}

/**
 * Decode raw outputs (896 logits and 896 x 16 regressors, anchors in output order) into
 * detections in network-input pixels. Only anchors scoring at least `scoreThreshold` are kept;
 * no NMS here.
 */
export function decodeBlazeFace(
  logits: Float32Array,
  regressors: Float32Array,
  inputW: number,
  inputH: number,
  scoreThreshold: number,
): FaceDetection[] {
  if (logits.length !== BLAZEFACE_ANCHORS || regressors.length !== BLAZEFACE_ANCHORS * VALUES_PER_ANCHOR) {
    throw new KioskError(
      ErrorCodes.MODEL_SHAPE_MISMATCH,
      `BlazeFace outputs have ${logits.length} scores / ${regressors.length} regressors, expected 896 / 14336`,
    );
  }
  const out: FaceDetection[] = [];
  for (let i = 0; i < BLAZEFACE_ANCHORS; i++) {
    const score = 1 / (1 + Math.exp(-(logits[i] as number)));
    if (!(score >= scoreThreshold)) continue;
    const r = regressors.subarray(i * VALUES_PER_ANCHOR, (i + 1) * VALUES_PER_ANCHOR);
    const ax = (ANCHORS[2 * i] as number) * inputW;
    const ay = (ANCHORS[2 * i + 1] as number) * inputH;
    const [x, y, w, h] = [r[0] as number, r[1] as number, r[2] as number, r[3] as number];
    const kps: Point[] = [];
    for (let k = 0; k < 6; k++) kps.push([ax + (r[4 + 2 * k] as number), ay + (r[5 + 2 * k] as number)]);
    out.push({
      box: [ax + x - w / 2, ay + y - h / 2, w, h],
      landmarks: blazeKeypointsToLandmarks5(kps),
      score,
    });
  }
  return out;
}

/**
 * Pixel normalisation: RGB in [-1, 1], as MediaPipe and keijiro's preprocessor feed it. Measured
 * on the five shared portraits (models/blazeface/README.md): RGB beats BGR on every face; [-1, 1]
 * and [0, 1] give the same mean top score (0.932), so the upstream range stays.
 */
export const BLAZEFACE_INPUT: TensorLayout = { kind: 'nhwc-rgb', scale: 2 / 255, offset: -1 };

/**
 * Find the two score tensors ([1, N, 1]) and two regressor tensors ([1, N, 16]) by shape, not
 * name, and concatenate them as 512 (16x16 grid) then 384 (8x8 grid), the anchor order.
 */
export function gatherBlazeOutputs(outputs: Record<string, WireTensor>): {
  logits: Float32Array;
  regressors: Float32Array;
} {
  const pick = (n: number, last: number): Float32Array => {
    const t = Object.values(outputs).find(
      (o) => o.dims.length === 3 && o.dims[1] === n && o.dims[2] === last,
    );
    if (!t || !(t.data instanceof Float32Array)) {
      const seen = Object.entries(outputs).map(([k, o]) => `${k}[${o.dims.join(',')}]`);
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `BlazeFace output [1,${n},${last}] float32 missing (got ${seen.join(' ')})`,
      );
    }
    return t.data;
  };
  const logits = new Float32Array(BLAZEFACE_ANCHORS);
  logits.set(pick(512, 1), 0);
  logits.set(pick(384, 1), 512);
  const regressors = new Float32Array(BLAZEFACE_ANCHORS * VALUES_PER_ANCHOR);
  regressors.set(pick(512, 16), 0);
  regressors.set(pick(384, 16), 512 * VALUES_PER_ANCHOR);
  return { logits, regressors };
}

export class BlazeFaceDetector extends OnnxDetector {
  readonly name = 'blazeface' as const;

  constructor(session: OrtSession, model: string, tuning: DetectorTuning) {
    super(session, model, tuning, BlazeFaceDetector.inputSize(session, model), BLAZEFACE_INPUT);
  }

  private static inputSize(session: OrtSession, model: string): InputSize {
    const dims = session.inputs[0]?.dims;
    // NHWC [1, H, W, 3]
    if (dims?.length !== 4 || typeof dims[1] !== 'number' || typeof dims[2] !== 'number' || dims[3] !== 3) {
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `${model}: BlazeFace input must be [1,H,W,3], got [${dims?.join(',') ?? '?'}]`,
      );
    }
    return { height: dims[1], width: dims[2] };
  }

  protected decode(outputs: Record<string, WireTensor>): FaceDetection[] {
    const { logits, regressors } = gatherBlazeOutputs(outputs);
    return decodeBlazeFace(logits, regressors, this.inputWidth, this.inputHeight, this.tuning.scoreThreshold);
  }
}
