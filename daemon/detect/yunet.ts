/**
 * YuNet ("2023mar" output layout, as OpenCV's face_detect.cpp decodes it) on ONNX Runtime.
 * Input [1, 3, H, W], BGR, 0..255 float; the size is read from the model so any export works.
 * Outputs per stride s in {8, 16, 32}: cls_s, obj_s [1, N, 1], bbox_s [1, N, 4], kps_s [1, N, 10],
 * N = (W/s) x (H/s) anchors in row-major order. Landmarks come out in the daemon's order already.
 */

import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { OrtSession, WireTensor } from '../inference/inference-worker.js';
import type { TensorLayout } from './letterbox.js';
import type { DetectorTuning } from './nms.js';
import { type InputSize, OnnxDetector } from './onnx-detector.js';
import type { FaceDetection, Landmarks5, Point } from './types.js';

export const YUNET_STRIDES = [8, 16, 32] as const;

export interface YuNetLevel {
  stride: number;
  cls: Float32Array;
  obj: Float32Array;
  bbox: Float32Array;
  kps: Float32Array;
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

/** Decode one YuNet run into detections in network-input pixels (no NMS). */
export function decodeYuNet(
  levels: YuNetLevel[],
  inputW: number,
  inputH: number,
  scoreThreshold: number,
): FaceDetection[] {
  const out: FaceDetection[] = [];
  for (const { stride: s, cls, obj, bbox, kps } of levels) {
    // face_detect.cpp pads the input up to a multiple of 32 before dividing by the stride.
    const cols = Math.ceil(inputW / 32) * (32 / s);
    const rows = Math.ceil(inputH / 32) * (32 / s);
    const n = cols * rows;
    if (cls.length !== n || obj.length !== n || bbox.length !== 4 * n || kps.length !== 10 * n) {
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `YuNet stride ${s}: expected ${n} anchors for a ${inputW}x${inputH} input, got cls ${cls.length}, bbox ${bbox.length / 4}`,
      );
    }
    for (let i = 0; i < n; i++) {
      const score = Math.sqrt(clamp01(cls[i] as number) * clamp01(obj[i] as number));
      if (!(score >= scoreThreshold)) continue;
      const row = Math.floor(i / cols);
      const col = i - row * cols;
      const cx = (col + (bbox[4 * i] as number)) * s;
      const cy = (row + (bbox[4 * i + 1] as number)) * s;
      const w = Math.exp(bbox[4 * i + 2] as number) * s;
      const h = Math.exp(bbox[4 * i + 3] as number) * s;
      const landmarks: Point[] = [];
      for (let k = 0; k < 5; k++) {
        landmarks.push([
          (col + (kps[10 * i + 2 * k] as number)) * s,
          (row + (kps[10 * i + 2 * k + 1] as number)) * s,
        ]);
      }
      out.push({ box: [cx - w / 2, cy - h / 2, w, h], landmarks: landmarks as Landmarks5, score });
    }
  }
  return out;
}

/** Pick cls_s / obj_s / bbox_s / kps_s out of a run's outputs by name. */
export function gatherYuNetOutputs(outputs: Record<string, WireTensor>): YuNetLevel[] {
  const get = (name: string): Float32Array => {
    const t = outputs[name];
    if (!t || !(t.data instanceof Float32Array)) {
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `YuNet output ${name} (float32) missing; got ${Object.keys(outputs).join(', ')}. Only the 2023mar layout is supported.`,
      );
    }
    return t.data;
  };
  return YUNET_STRIDES.map((s) => ({
    stride: s,
    cls: get(`cls_${s}`),
    obj: get(`obj_${s}`),
    bbox: get(`bbox_${s}`),
    kps: get(`kps_${s}`),
  }));
}

/** YuNet's input: NCHW, BGR, raw 0-255 values (as OpenCV's FaceDetectorYN feeds it). */
export const YUNET_INPUT: TensorLayout = { kind: 'nchw-bgr' };

export class YuNetDetector extends OnnxDetector {
  readonly name = 'yunet' as const;

  constructor(session: OrtSession, model: string, tuning: DetectorTuning) {
    super(session, model, tuning, YuNetDetector.inputSize(session, model), YUNET_INPUT);
  }

  private static inputSize(session: OrtSession, model: string): InputSize {
    const dims = session.inputs[0]?.dims;
    // NCHW [1, 3, H, W]; a dynamic-size export must be re-exported with a fixed size.
    if (dims?.length !== 4 || dims[1] !== 3 || typeof dims[2] !== 'number' || typeof dims[3] !== 'number') {
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `${model}: YuNet input must be a fixed [1,3,H,W], got [${dims?.join(',') ?? '?'}]`,
      );
    }
    return { height: dims[2], width: dims[3] };
  }

  protected decode(outputs: Record<string, WireTensor>): FaceDetection[] {
    return decodeYuNet(
      gatherYuNetOutputs(outputs),
      this.inputWidth,
      this.inputHeight,
      this.tuning.scoreThreshold,
    );
  }
}
