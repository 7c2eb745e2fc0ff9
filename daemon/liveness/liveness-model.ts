/**
 * A liveness model as the daemon uses it: manifest-driven preprocessing (crop, colour,
 * normalisation), inference in the worker thread, and the per-frame verdict from the
 * manifest's thresholds (optionally overridden per site by the config).
 */
import { createHash } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import type { Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { scaledBoxCrop, scaledBoxRect, similarityMatrix, toTensor, warpCrop } from '../align/aligner.js';
import type { FaceDetection, Point } from '../detect/types.js';
import { f32, type InferenceWorker, LIVENESS_LANE, type OrtSession } from '../inference/inference-worker.js';
import { tensorrtEnv } from '../inference/tensorrt.js';
import { type LoadedModel, loadManifest, type SingleModelManifest } from './manifest.js';
import { fghvScoresOf, fghvThresholdsOf, ModelThresholds, softmaxThresholdsOf } from './thresholds.js';
import { fghvVerdict, softmax, softmaxVerdict, type Verdict } from './verdict.js';

export interface LivenessResult {
  verdict: Verdict;
  scores: Record<string, number>;
  /** Time spent preparing crops and tensors (ms). */
  alignMs: number;
  /** Time spent inside the network(s) (ms, measured in the worker). */
  inferMs: number;
}

export interface ModelInfo {
  name: string;
  version: string;
  sha256: string;
  family: 'fghv' | 'softmax' | 'ensemble';
  purpose: 'production' | 'demo' | 'untrained' | 'reference';
  manifest: string;
}

export interface LoadLivenessOptions {
  providers: string[];
  intraOpThreads: number;
  /** ONNX Runtime intra-op spinning (default false). */
  allowSpinning?: boolean;
  thresholds?: Record<string, number>;
  /** Provider environment for a model, by its sha256 (TensorRT options and engine cache). */
  providerEnv?: (modelSha256: string) => Record<string, string>;
}

interface Member {
  manifest: SingleModelManifest;
  session: OrtSession;
}

function checkShape(m: SingleModelManifest, session: OrtSession, modelPath: string): void {
  const input = session.inputs.find((i) => i.name === m.input.name);
  if (!input) {
    throw new KioskError(
      ErrorCodes.MODEL_SHAPE_MISMATCH,
      `model ${modelPath} has no input named "${m.input.name}" (it has: ${session.inputs.map((i) => i.name).join(', ')})`,
    );
  }
  if (input.dims) {
    const ok =
      input.dims.length === m.input.shape.length &&
      input.dims.every((d, i) => typeof d !== 'number' || d <= 0 || d === m.input.shape[i]);
    if (!ok) {
      throw new KioskError(
        ErrorCodes.MODEL_SHAPE_MISMATCH,
        `model ${modelPath} input "${m.input.name}" has shape [${input.dims.join(', ')}], the manifest says [${m.input.shape.join(', ')}]`,
        { details: { path: modelPath, actual: input.dims, expected: m.input.shape } },
      );
    }
  }
  const wanted = m.family === 'fghv' ? Object.values(m.outputs) : [m.outputs.name];
  const missing = wanted.filter((name) => !session.outputs.some((o) => o.name === name));
  if (missing.length) {
    throw new KioskError(
      ErrorCodes.MODEL_SHAPE_MISMATCH,
      `model ${modelPath} lacks the outputs ${missing.join(', ')} that its manifest names`,
    );
  }
}

function mergeThresholds<T extends object>(
  base: T,
  overrides: Record<string, number> | undefined,
  source: string,
): T {
  if (!overrides || Object.keys(overrides).length === 0) return base;
  const unknown = Object.keys(overrides).filter((k) => !(k in base));
  if (unknown.length) {
    throw new KioskError(
      ErrorCodes.CONFIG_INVALID,
      `liveness.thresholds: unknown key(s) ${unknown.join(', ')} for ${source} (valid: ${Object.keys(base).join(', ')})`,
    );
  }
  return { ...base, ...overrides };
}

/** Load options from the daemon's configuration, one place for every caller. */
export function livenessOptions(config: Pick<Config, 'liveness' | 'device'>): LoadLivenessOptions {
  return {
    providers: config.liveness.providers,
    intraOpThreads: config.liveness.intra_op_threads,
    allowSpinning: config.liveness.intra_op_spinning,
    thresholds: config.liveness.thresholds,
    providerEnv: (sha) => tensorrtEnv(config.device.state_dir, sha, config.liveness.tensorrt),
  };
}

export class LivenessModel {
  private constructor(
    readonly info: ModelInfo,
    readonly provider: string,
    private readonly members: Member[],
    /** The thresholds' one owner (thresholds.ts): in force, floor, overrides. */
    readonly thresholds: ModelThresholds,
  ) {}

  static async load(
    worker: InferenceWorker,
    manifestPath: string,
    opts: LoadLivenessOptions,
  ): Promise<LivenessModel> {
    const loaded = await loadManifest(manifestPath);
    const singles: { manifest: SingleModelManifest; modelPath: string }[] =
      'members' in loaded
        ? loaded.members.map((m) => m as { manifest: SingleModelManifest; modelPath: string })
        : [loaded as Extract<LoadedModel, { modelPath: string }>];
    const members: Member[] = [];
    try {
      for (const s of singles) {
        const session = await worker.load(s.modelPath, {
          lane: LIVENESS_LANE,
          providers: opts.providers,
          intraOpThreads: opts.intraOpThreads,
          ...(opts.allowSpinning === undefined ? {} : { allowSpinning: opts.allowSpinning }),
          ...(opts.providerEnv && opts.providers.includes('tensorrt')
            ? { env: opts.providerEnv(s.manifest.sha256) }
            : {}),
        });
        members.push({ manifest: s.manifest, session });
        checkShape(s.manifest, session, s.modelPath);
      }
    } catch (e) {
      await Promise.all(members.map((m) => m.session.release()));
      throw e;
    }
    const m = loaded.manifest;
    const sha256 =
      m.family === 'ensemble'
        ? createHash('sha256')
            .update(singles.map((s) => s.manifest.sha256).join(''))
            .digest('hex')
        : m.sha256;
    const info: ModelInfo = {
      name: m.name,
      version: m.version,
      sha256,
      family: m.family,
      purpose: m.purpose,
      manifest: loaded.manifestPath,
    };
    const thresholds = new ModelThresholds(
      m.family === 'fghv'
        ? { family: 'fghv', values: mergeThresholds(m.thresholds, opts.thresholds, m.name) }
        : { family: 'softmax', values: mergeThresholds(m.thresholds, opts.thresholds, m.name) },
    );
    return new LivenessModel(info, members[0]?.session.provider ?? 'cpu', members, thresholds);
  }

  private prepare(m: SingleModelManifest, image: Mat, face: FaceDetection): Float32Array {
    const [w, h] = m.crop.size;
    const crop =
      m.crop.method === 'similarity'
        ? warpCrop(image, similarityMatrix(face.landmarks, m.crop.template as Point[]), w, h)
        : scaledBoxCrop(image, face.box, m.crop.scale, w, h);
    try {
      return toTensor(crop, m.input);
    } finally {
      crop.release(); // Mat memory is invisible to V8's GC (core/cv.ts)
    }
  }

  /**
   * How many times the model's input side the region its crop reads for `face` spans, on an
   * image of `imageWidth` x `imageHeight` (the smallest over an ensemble's members): below 1
   * the crop enlarges. The pipeline reads a reduced JPEG decode for the crop only when this
   * stays comfortably above 1 (pipeline.ts, REDUCED_CROP_MARGIN).
   */
  cropMargin(face: FaceDetection, imageWidth: number, imageHeight: number): number {
    let margin = Number.POSITIVE_INFINITY;
    for (const { manifest: m } of this.members) {
      const [w, h] = m.crop.size;
      let side: number;
      if (m.crop.method === 'similarity') {
        // The similarity transform scales by (eye distance in the image) / (in the template).
        const [re, le] = face.landmarks;
        const [tr, tl] = m.crop.template as Point[];
        const eyes = Math.hypot(le[0] - re[0], le[1] - re[1]);
        const tEyes = Math.hypot((tl as Point)[0] - (tr as Point)[0], (tl as Point)[1] - (tr as Point)[1]);
        side = tEyes > 0 ? (eyes / tEyes) * Math.min(w, h) : 0;
      } else {
        const r = scaledBoxRect(face.box, m.crop.scale, imageWidth, imageHeight);
        side = Math.min(r.w, r.h);
      }
      margin = Math.min(margin, side / Math.max(w, h));
    }
    return margin;
  }

  /** Crop, infer and judge one face of one frame. */
  async classify(image: Mat, face: FaceDetection): Promise<LivenessResult> {
    let alignMs = 0;
    let inferMs = 0;
    const pLives: number[] = [];
    let fghv: Record<string, number> | null = null;
    for (const { manifest: m, session } of this.members) {
      const t0 = performance.now();
      const tensor = this.prepare(m, image, face);
      alignMs += performance.now() - t0;
      const { outputs, ms } = await session.run({ [m.input.name]: f32(tensor, [...m.input.shape]) });
      inferMs += ms;
      if (m.family === 'fghv') {
        fghv = {};
        for (const [key, name] of Object.entries(m.outputs))
          fghv[key] = Number(outputs[name]?.data[0] ?? Number.NaN);
      } else {
        const raw = outputs[m.outputs.name]?.data as Float32Array | undefined;
        if (!raw || raw.length < m.outputs.classes) {
          throw new KioskError(
            ErrorCodes.INFERENCE_FAILED,
            `model ${m.name} returned no "${m.outputs.name}" output`,
          );
        }
        const probs = m.outputs.apply_softmax ? softmax(raw.subarray(0, m.outputs.classes)) : Array.from(raw);
        pLives.push(probs[m.outputs.live_index] ?? Number.NaN);
      }
    }
    const t = this.thresholds.typed;
    if (fghv) {
      const verdict = fghvVerdict(
        fghvScoresOf(fghv),
        t.family === 'fghv' ? t.values : fghvThresholdsOf(t.values),
      );
      return { verdict, scores: fghv, alignMs, inferMs };
    }
    const pLive = pLives.reduce((a, b) => a + b, 0) / pLives.length;
    const scores: Record<string, number> = { p_live: pLive };
    if (pLives.length > 1) {
      for (const [i, p] of pLives.entries()) scores[`p_live_${this.members[i]?.manifest.name}`] = p;
    }
    const verdict = softmaxVerdict(pLive, t.family === 'softmax' ? t.values : softmaxThresholdsOf(t.values));
    return { verdict, scores, alignMs, inferMs };
  }

  /** Thresholds in force (manifest merged with site overrides). */
  get activeThresholds(): Readonly<Record<string, number>> {
    return this.thresholds.active;
  }

  /** One inference on a synthetic input so the first real frame does not pay session warm-up. */
  async warmUp(): Promise<void> {
    for (const { manifest: m, session } of this.members) {
      const n = m.input.shape.reduce((a, b) => a * b, 1);
      await session.run({ [m.input.name]: f32(new Float32Array(n), [...m.input.shape]) });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.session.release()));
  }
}
