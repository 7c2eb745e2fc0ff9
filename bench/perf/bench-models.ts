/** The detector and liveness model a benchmark run uses, loaded on the CPU provider and warmed up. */
import { packageRoot } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { createDetector } from '../../daemon/detect/index.js';
import type { DetectorName, FaceDetector } from '../../daemon/detect/types.js';
import type { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { LivenessModel } from '../../daemon/liveness/liveness-model.js';

export interface BenchModels {
  detector: DetectorName;
  /** null: the detector's default model. */
  detectorModel: string | null;
  manifest: string;
  /** ONNX Runtime intra-op threads per session (0: auto). */
  threads: number;
  spinning: boolean;
}

export async function loadBenchModels(
  worker: InferenceWorker,
  m: BenchModels,
  config: Config,
): Promise<{ detector: FaceDetector; liveness: LivenessModel }> {
  const detector = await createDetector(worker, {
    name: m.detector,
    model: m.detectorModel,
    scoreThreshold: config.detector.score_threshold,
    nmsIou: config.detector.nms_iou,
    maxFaces: config.detector.max_faces,
    providers: ['cpu'],
    intraOpThreads: m.threads,
    allowSpinning: m.spinning,
    repoRoot: packageRoot,
  });
  const liveness = await LivenessModel.load(worker, m.manifest, {
    providers: ['cpu'],
    intraOpThreads: m.threads,
    allowSpinning: m.spinning,
  });
  await liveness.warmUp();
  return { detector, liveness };
}
