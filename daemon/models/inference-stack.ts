/**
 * The inference stack, built in one place for the daemon and every offline tool (drill, drill
 * apply, classify, doctor, model install): the inference worker, the liveness model (with the
 * site's stored thresholds when it is the device's own model), the face detector, the warm-up.
 * This is the only file outside daemon/inference/ (and tests) that starts an inference worker.
 * A stack that fails part-way closes what it built and rethrows.
 */
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../core/log.js';
import { type CreateDetectorOptions, createDetector } from '../detect/index.js';
import type { FaceDetector } from '../detect/types.js';
import { InferenceWorker } from '../inference/inference-worker.js';
import { LivenessModel, type LoadLivenessOptions, livenessOptions } from '../liveness/liveness-model.js';
import { applyStoredThresholds } from '../liveness/thresholds-store.js';
import { activeManifest } from './model-install.js';

/**
 * Which liveness model: the device's own (the installed one, else `liveness.manifest`, with the
 * stored threshold overrides applied; `fallback`: an installed model that cannot load falls back
 * to `liveness.manifest`), or a given manifest as it is (classify: no site thresholds).
 */
export type LivenessSource =
  | { device: Config; log: Logger | null; fallback?: boolean }
  | { manifest: string; options: LoadLivenessOptions };

export interface StackSpec {
  liveness?: LivenessSource;
  detector?: CreateDetectorOptions;
  /** Warm the liveness model up (first inference) before returning. */
  warmUp?: boolean;
  /** Called as soon as the liveness model has loaded (the daemon logs it then). */
  onLiveness?: (model: LivenessModel) => void;
  /**
   * Called before each later part (`detector`, `warm-up`); throwing cancels the stack, which
   * closes what it built. The daemon passes its stop check, so a stop during the models' load
   * cancels the start there, as it did when each part was a start step of its own.
   */
  checkpoint?: (next: string) => void;
}

export interface InferenceStack<S extends StackSpec> {
  worker: InferenceWorker;
  liveness: S extends { liveness: LivenessSource } ? LivenessModel : null;
  detector: S extends { detector: CreateDetectorOptions } ? FaceDetector : null;
  /** Closes the detector, the liveness model and the worker, in that order. */
  close(): Promise<void>;
}

export async function openInferenceStack<S extends StackSpec>(spec: S): Promise<InferenceStack<S>> {
  const worker = InferenceWorker.start();
  let liveness: LivenessModel | null = null;
  let detector: FaceDetector | null = null;
  const close = async () => {
    try {
      await detector?.close();
    } finally {
      try {
        await liveness?.close();
      } finally {
        await worker.close();
      }
    }
  };
  try {
    if (spec.liveness) {
      liveness = await loadLiveness(worker, spec.liveness);
      spec.onLiveness?.(liveness);
    }
    if (spec.detector) {
      spec.checkpoint?.('detector');
      detector = await createDetector(worker, spec.detector);
    }
    if (spec.warmUp && liveness) {
      spec.checkpoint?.('warm-up');
      await liveness.warmUp();
    }
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
  // The conditional field types follow spec: what it asked for was built above.
  return { worker, liveness, detector, close } as InferenceStack<S>;
}

async function loadLiveness(worker: InferenceWorker, source: LivenessSource): Promise<LivenessModel> {
  if ('manifest' in source) return LivenessModel.load(worker, source.manifest, source.options);
  const { device: config, log } = source;
  const load = (manifest: string) => LivenessModel.load(worker, manifest, livenessOptions(config));
  const manifest = activeManifest(config.device.state_dir, config.liveness.manifest);
  let model: LivenessModel;
  if (manifest === config.liveness.manifest || !source.fallback) model = await load(manifest);
  else {
    try {
      model = await load(manifest);
    } catch (err) {
      log?.error({ err, manifest }, 'the installed model cannot load: rolling back to liveness.manifest');
      model = await load(config.liveness.manifest);
    }
  }
  try {
    const stored = applyStoredThresholds(model, config);
    if (stored.refused)
      log?.error({ refused: stored.refused }, `stored threshold overrides not applied: ${stored.refused}`);
    else if (Object.keys(stored.applied).length)
      log?.warn(
        { overrides: stored.applied },
        'liveness thresholds overridden (set_thresholds, kept across restarts)',
      );
  } catch (err) {
    await model.close();
    throw err;
  }
  return model;
}
