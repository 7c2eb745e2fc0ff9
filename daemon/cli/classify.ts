/**
 * `fghv-kiosk classify`: the daemon's per-frame path (detect -> quality gates -> align ->
 * liveness -> verdict) on still images, one result per image. Tests, benchmarks, calibration
 * and integrators use it, so it applies the daemon's quality gates (quality: null skips them)
 * and names the scores as the decision payload does.
 */
import { packageRoot } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { readImageBgr } from '../../drivers/camera/still-image.js';
import { type DecisionScores, decisionScores } from '../contract/payloads.js';
import type { FaceQuality, QualityGate } from '../decision/types.js';
import type { DetectorTuning } from '../detect/index.js';
import type { DetectorName, Point } from '../detect/types.js';
import type { Verdict } from '../liveness/verdict.js';
import { openInferenceStack } from '../models/inference-stack.js';
import { faceStep } from '../pipeline/face-step.js';

export interface ClassifiedFace {
  box: [number, number, number, number];
  landmarks: Point[];
  detector_score: number;
  quality: FaceQuality;
  /** The first quality gate the face failed (no verdict then), null when it passed or gates were skipped. */
  quality_gate: QualityGate | null;
  /** null: a quality gate failed, the daemon would not have classified this face. */
  verdict: Verdict | null;
  /** The decision payload's score names that the model gives (p_real; var and delta_kl for FGHV). */
  scores: Partial<DecisionScores>;
}

export type ClassifyResult =
  | { file: string; width: number; height: number; faces: ClassifiedFace[] }
  | { file: string; error: { code: string; message: string } };

export interface ClassifyOptions {
  manifest: string;
  detector: string;
  detectorModel: string | null;
  /** Detector threshold, NMS and face limit (config `detector.*`). */
  detectorTuning?: DetectorTuning;
  /** The daemon's quality gates (config `quality`); null: classify every face. */
  quality: Config['quality'] | null;
  providers: string[];
  intraOpThreads: number;
  images: string[];
  /** Honour EXIF orientation tags (off: pixels as stored, like camera frames). */
  applyExif?: boolean;
  log: Logger;
  onResult?: (r: ClassifyResult) => void;
}

const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;
const roundOrNull = (v: number | null) => (v === null ? null : round(v, 6));

export async function classifyImages(opts: ClassifyOptions): Promise<ClassifyResult[]> {
  const stack = await openInferenceStack({
    liveness: {
      manifest: opts.manifest,
      options: { providers: opts.providers, intraOpThreads: opts.intraOpThreads },
    },
    detector: {
      name: opts.detector as DetectorName,
      model: opts.detectorModel,
      ...(opts.detectorTuning ?? { scoreThreshold: 0.6, nmsIou: 0.3, maxFaces: 10 }),
      providers: opts.providers,
      intraOpThreads: opts.intraOpThreads,
      repoRoot: packageRoot,
    },
  });
  const { liveness: model, detector } = stack;
  const results: ClassifyResult[] = [];
  try {
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
          // The pipeline's own per-face step: quality gates, then align and liveness.
          const {
            quality,
            gate,
            liveness: r,
          } = await faceStep(image, face, model, { quality: opts.quality });
          const scores = decisionScores(r?.scores ?? {});
          faces.push({
            box: face.box.map((v) => round(v)) as [number, number, number, number],
            landmarks: face.landmarks.map(([x, y]) => [round(x), round(y)] as Point),
            detector_score: round(face.score, 4),
            quality: {
              face_px: round(quality.face_px, 1),
              sharpness: round(quality.sharpness, 4),
              brightness: round(quality.brightness, 4),
            },
            quality_gate: gate,
            verdict: r?.verdict ?? null,
            // Only the scores this model gives (a softmax model has p_real alone); none without a verdict.
            scores: Object.fromEntries(
              Object.entries(scores)
                .filter(([, v]) => v !== null)
                .map(([k, v]) => [k, roundOrNull(v)]),
            ) as Partial<DecisionScores>,
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
  } finally {
    await stack.close();
  }
  return results;
}
