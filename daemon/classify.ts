/**
 * `fghv-kiosk classify`: the daemon's per-frame path (detect -> align -> liveness -> verdict)
 * on still images, one result per image. Tests, benchmarks, calibration and integrators use it.
 */
import { packageRoot } from '../config/load.js';
import { readImageBgr } from '../drivers/camera/still-image.js';
import { createDetector } from './detect/index.js';
import type { DetectorName, Point } from './detect/types.js';
import { asError, ErrorCodes, KioskError } from './errors.js';
import { InferenceWorker } from './inference/inference-worker.js';
import { LivenessModel } from './liveness/liveness-model.js';
import type { Verdict } from './liveness/verdict.js';
import type { Logger } from './log.js';

export interface ClassifiedFace {
  box: [number, number, number, number];
  landmarks: Point[];
  detector_score: number;
  verdict: Verdict;
  scores: Record<string, number>;
}

export type ClassifyResult =
  | { file: string; width: number; height: number; faces: ClassifiedFace[] }
  | { file: string; error: { code: string; message: string } };

export interface ClassifyOptions {
  manifest: string;
  detector: string;
  detectorModel: string | null;
  providers: string[];
  intraOpThreads: number;
  images: string[];
  /** Honour EXIF orientation tags (off: pixels as stored, like camera frames). */
  applyExif?: boolean;
  log: Logger;
  onResult?: (r: ClassifyResult) => void;
}

const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

export async function classifyImages(opts: ClassifyOptions): Promise<ClassifyResult[]> {
  const worker = InferenceWorker.start();
  const results: ClassifyResult[] = [];
  try {
    const detector = await createDetector(worker, {
      name: opts.detector as DetectorName,
      model: opts.detectorModel,
      scoreThreshold: 0.6,
      nmsIou: 0.3,
      maxFaces: 10,
      providers: opts.providers,
      intraOpThreads: opts.intraOpThreads,
      repoRoot: packageRoot,
    });
    const model = await LivenessModel.load(worker, opts.manifest, {
      providers: opts.providers,
      intraOpThreads: opts.intraOpThreads,
    });
    if (model.info.purpose !== 'production') {
      opts.log.warn(
        { model: model.info.name, purpose: model.info.purpose },
        `liveness model ${model.info.name} is marked purpose: ${model.info.purpose}; do not use its verdicts to secure anything`,
      );
    }
    for (const file of opts.images) {
      let result: ClassifyResult;
      try {
        const image = await readImageBgr(file, { applyExifOrientation: opts.applyExif === true });
        const faces: ClassifiedFace[] = [];
        for (const face of await detector.detect(image)) {
          const r = await model.classify(image, face);
          faces.push({
            box: face.box.map((v) => round(v)) as [number, number, number, number],
            landmarks: face.landmarks.map(([x, y]) => [round(x), round(y)] as Point),
            detector_score: round(face.score, 4),
            verdict: r.verdict,
            scores: Object.fromEntries(Object.entries(r.scores).map(([k, v]) => [k, round(v, 6)])),
          });
        }
        result = { file, width: image.cols, height: image.rows, faces };
      } catch (e) {
        const err =
          e instanceof KioskError ? e : new KioskError(ErrorCodes.INTERNAL, asError(e).message, { cause: e });
        result = { file, error: { code: err.code, message: err.message } };
      }
      results.push(result);
      opts.onResult?.(result);
    }
    await model.close();
    await detector.close();
  } finally {
    await worker.close();
  }
  return results;
}
