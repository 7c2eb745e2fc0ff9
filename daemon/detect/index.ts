/**
 * Detector factory: looks the name up in the detector table (registry.ts: class, input
 * convention, default model), loads only the backend asked for and lists the valid names when
 * the name is unknown.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../config/load.js';
import { fetchCommand, modelNameOf, modelsDirOf } from '../../config/models.js';
import { type Config, DETECTOR_NAMES } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { checkFile, DEFAULT_MAX_MODEL_BYTES } from '../../core/file-rule.js';
import { DETECTOR_LANE, type InferenceWorker } from '../inference/inference-worker.js';
import type { DetectorTuning } from './nms.js';
import { DETECTORS, type DetectorTable, detectorSpec } from './registry.js';
import type { DetectorName, FaceDetector } from './types.js';

export type { DetectorTuning } from './nms.js';
export { DETECTORS, type DetectorSpec, type DetectorTable } from './registry.js';
export type { DetectorName, FaceDetection, FaceDetector, Landmarks5, Point } from './types.js';

export { DETECTOR_NAMES };

export interface CreateDetectorOptions extends DetectorTuning {
  /** A name of the detector table (a DetectorName for the device's table; checked, not trusted). */
  name: string;
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

/** The model a detector uses when the config names none (its entry in the detector table). */
export function defaultDetectorModel(
  name: DetectorName,
  repoRoot: string,
  modelsDir = modelsDirOf({ device: { state_dir: path.join(repoRoot, '.state') } }),
): string {
  return DETECTORS[name].defaultModel(repoRoot, modelsDir);
}

/**
 * The detector `opts.name` names, on its model in the worker's detector lane. `detectors`: the
 * table to look the name up in (default: the device's, DETECTORS in registry.ts).
 */
export async function createDetector(
  worker: Pick<InferenceWorker, 'load'>,
  opts: CreateDetectorOptions,
  detectors: DetectorTable = DETECTORS,
): Promise<FaceDetector> {
  const name: string = opts.name;
  const spec = detectorSpec(detectors, name);
  if (!spec) {
    const valid = Object.keys(detectors);
    throw new KioskError(
      ErrorCodes.DETECTOR_UNKNOWN,
      `unknown detector "${name}"; valid names: ${valid.join(', ')}`,
      {
        details: { name, valid },
      },
    );
  }
  const model = opts.model
    ? path.resolve(opts.repoRoot, opts.model)
    : spec.defaultModel(
        opts.repoRoot,
        modelsDirOf({ device: { state_dir: path.join(opts.repoRoot, '.state') } }),
      );
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
      spec.missingDefaultHint && !opts.model
        ? spec.missingDefaultHint
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
    return spec.create(session, model, tuning);
  } catch (e) {
    await session.release();
    throw e;
  }
}
