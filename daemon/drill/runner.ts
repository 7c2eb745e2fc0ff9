/**
 * Runs a drill on the production pipeline: the daemon's detector, alignment, liveness model
 * (with the site thresholds `set_thresholds` stored), quality gates and fusion, one
 * CameraPipeline per camera session, so nothing differs from what decides at the gate.
 *
 * Two ways in:
 * - scripted (`runScripted`): presentations from a labels file, each played from a video file
 *   used as the camera. Frames are timed by the video's own clock (frame n at n / fps), not by
 *   how fast this machine processes them, and none is dropped: the same files give the same
 *   record on any machine.
 * - live (`LiveDrill`): the configured camera in real time; the installer opens and closes
 *   each presentation (terminal prompts, or the status page).
 */
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { packageRoot } from '../../config/load.js';
import type { CameraConfig, Config } from '../../config/schema.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { readCheckedText } from '../../core/file-rule.js';
import type { Logger } from '../../core/log.js';
import { createCamera, createSupervisedCamera } from '../../drivers/camera/index.js';
import { JpegFrame, releaseFrame } from '../../drivers/camera/jpeg.js';
import type { CameraDriver, Frame } from '../../drivers/camera/types.js';
import { detectorOptions } from '../detect/index.js';
import type { FaceDetector } from '../detect/types.js';
import type { InferenceWorker } from '../inference/inference-worker.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import { openInferenceStack } from '../models/inference-stack.js';
import { CameraPipeline, type CameraState } from '../pipeline/pipeline.js';
import {
  type DrillRecorder,
  type DrillStore,
  type PresentationRecord,
  type PresentationSpec,
  startDrillRecord,
} from './record.js';

const noStages = { record: () => undefined };

/** A labels file: what each presentation is, and (scripted) which video plays it. */
const labelsSchema = z.strictObject({
  camera: z.string().optional(),
  presentations: z
    .array(
      z.strictObject({
        label: z.enum(['bona_fide', 'attack']),
        /** Attack type (PAI species): print, replay, or any name. Required for attacks. */
        type: z.string().min(1).max(64).optional(),
        subject: z.string().max(128).optional(),
        /** Video file (relative to the labels file) used as the camera for this presentation. */
        video: z.string().min(1),
        /** Part of the video, seconds (default: all of it). */
        from_s: z.number().min(0).optional(),
        to_s: z.number().positive().optional(),
      }),
    )
    .min(1, 'no presentations'),
});

export type LabelsFile = z.infer<typeof labelsSchema>;
export type ScriptedPresentation = LabelsFile['presentations'][number] & { videoPath: string };

/** A labels file lists presentations: a few kilobytes. */
export const MAX_LABELS_BYTES = 1 << 20;

export function readLabels(file: string): ScriptedPresentation[] {
  let parsed: unknown;
  try {
    // A regular file of at most 1 MiB, checked before reading (core/file-rule.ts).
    parsed = YAML.parse(
      readCheckedText(file, {
        what: 'labels file',
        maxBytes: MAX_LABELS_BYTES,
        code: ErrorCodes.DRILL_INVALID,
      }),
    );
  } catch (cause) {
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `cannot read the labels file ${file}: ${asError(cause).message}`,
      {
        cause,
      },
    );
  }
  const r = labelsSchema.safeParse(parsed);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ');
    throw new KioskError(ErrorCodes.DRILL_INVALID, `labels file ${file}: ${msg}`);
  }
  return r.data.presentations.map((p, i) => {
    if (p.label === 'attack' && !p.type)
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `labels file ${file}: presentations.${i}: an attack needs its type (print, replay, ...)`,
      );
    if (p.label === 'bona_fide' && p.type)
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `labels file ${file}: presentations.${i}: a bona fide presentation has no attack type`,
      );
    if (p.from_s !== undefined && p.to_s !== undefined && p.to_s <= p.from_s)
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `labels file ${file}: presentations.${i}: to_s must be after from_s`,
      );
    return { ...p, videoPath: path.resolve(path.dirname(file), p.video) };
  });
}

export function specOf(p: {
  label: 'bona_fide' | 'attack';
  type?: string;
  subject?: string;
}): PresentationSpec {
  return {
    label: p.label,
    attackType: p.label === 'attack' ? (p.type ?? null) : null,
    subject: p.subject ?? null,
  };
}

/**
 * A video file as a camera on the video's clock: frame n is captured at offset + n / fps
 * (ms), and `clock` is the newest frame's time (the pipeline's `now`), so no frame is ever
 * stale and fusion sees the video's timing.
 */
export class VideoClockCamera implements CameraDriver {
  clock: number;
  constructor(
    private readonly inner: CameraDriver,
    private readonly offsetMs: number,
    private readonly range: { fromS?: number | undefined; toS?: number | undefined } = {},
  ) {
    this.clock = offsetMs;
  }
  get info() {
    return this.inner.info;
  }
  open() {
    return this.inner.open();
  }
  stats() {
    return this.inner.stats();
  }
  close() {
    return this.inner.close();
  }
  async *frames(): AsyncIterable<Frame> {
    const dt = 1000 / (this.inner.info.fps ?? 15);
    let n = 0;
    for await (const f of this.inner.frames()) {
      const s = (n * dt) / 1000;
      n++;
      if (this.range.fromS !== undefined && s < this.range.fromS - 1e-9) {
        releaseFrame(f);
        continue;
      }
      if (this.range.toS !== undefined && s >= this.range.toS - 1e-9) {
        releaseFrame(f);
        return;
      }
      this.clock = this.offsetMs + (n - 1) * dt;
      // A JPEG frame's image is a getter, which a spread would lose.
      yield f.jpeg
        ? new JpegFrame(f.jpeg, f.capturedAt, this.clock, f.seq)
        : { ...f, capturedMono: this.clock };
    }
  }
}

export interface DrillContext {
  config: Config;
  log: Logger;
  worker: InferenceWorker;
  detector: FaceDetector;
  liveness: LivenessModel;
  store: DrillStore;
  recorder: DrillRecorder;
  close(): Promise<void>;
}

export interface OpenDrillOptions {
  config: Config;
  log: Logger;
  software: string;
  cameraIds: string[];
  storeImages?: boolean;
}

/** Loads the production models (as the daemon would start them) and creates the record. */
export async function openDrill(opts: OpenDrillOptions): Promise<DrillContext> {
  const { config, log } = opts;
  // The production models as the daemon starts them, with the site thresholds in force.
  const stack = await openInferenceStack({
    liveness: { device: config, log },
    detector: detectorOptions(config),
    warmUp: true,
  });
  const { worker, liveness, detector } = stack;
  try {
    const m = liveness.info;
    if (m.purpose !== 'production')
      log.warn(
        { model: m.name, purpose: m.purpose },
        `liveness model ${m.name} is marked purpose: ${m.purpose}`,
      );
    const { store, recorder } = startDrillRecord({
      config,
      software: opts.software,
      cameraIds: opts.cameraIds,
      liveness,
      detector: detector.name,
      storeImages: opts.storeImages === true,
    });
    return {
      config,
      log,
      worker,
      detector,
      liveness,
      store,
      recorder,
      close: () => stack.close(),
    };
  } catch (e) {
    await stack.close();
    throw e;
  }
}

export interface ScriptedProgress {
  onPresentation?: (p: PresentationRecord, index: number, total: number) => void;
  /** Tests: a camera in place of the video file (e.g. one that fails mid-stream). */
  cameraFor?: (p: ScriptedPresentation, cameraId: string) => CameraDriver;
}

const cameraError = (e: unknown): { code: string; message: string } => {
  const err = asError(e);
  return { code: err instanceof KioskError ? err.code : ErrorCodes.CAMERA_READ_FAILED, message: err.message };
};

/**
 * Plays each labelled presentation through a fresh pipeline (fresh tracker and fusion: one
 * presentation never leaks into the next). A camera that cannot open or fails mid-stream ends
 * the drill: the presentation is recorded as interrupted, everything before it is kept, and
 * the camera's error is thrown.
 */
export async function runScripted(
  ctx: DrillContext,
  presentations: ScriptedPresentation[],
  cameraId: string,
  progress: ScriptedProgress = {},
): Promise<PresentationRecord[]> {
  const done: PresentationRecord[] = [];
  const camCfg = ctx.config.cameras.find((c) => c.id === cameraId) ?? (ctx.config.cameras[0] as CameraConfig);
  let offset = 0;
  for (const [i, p] of presentations.entries()) {
    const inner =
      progress.cameraFor?.(p, cameraId) ??
      createCamera(
        { ...camCfg, id: cameraId, kind: 'file', source: p.videoPath, loop: false, realtime: false },
        { repoRoot: packageRoot },
      );
    const camera = new VideoClockCamera(inner, offset, { fromS: p.from_s, toS: p.to_s });
    let failure: Error | null = null;
    const pipeline = new CameraPipeline({
      cameraId,
      camera,
      detector: ctx.detector,
      liveness: ctx.liveness,
      config: ctx.config,
      log: ctx.log,
      stages: noStages,
      sink: { decision: (d) => ctx.recorder.onDecision(d) },
      onFrame: (r) => ctx.recorder.onFrame(r),
      onState: (state: CameraState, err) => {
        if (state === 'failed') failure = err ?? new Error('camera failed');
      },
      now: () => camera.clock,
    });
    // Every frame of the presentation is scored, also after the presence was decided.
    pipeline.scoreHeldFaces = true;
    ctx.recorder.begin(specOf(p), cameraId, p.video);
    try {
      await pipeline.start();
      await pipeline.done();
    } catch (e) {
      failure = asError(e);
    }
    await pipeline.stop().catch(() => undefined);
    // Next presentation starts well after this one on the shared clock (cooldowns cannot carry over).
    offset = camera.clock + 60_000;
    if (failure) {
      const rec = ctx.recorder.end(cameraError(failure));
      if (rec) {
        done.push(rec);
        progress.onPresentation?.(rec, i, presentations.length);
      }
      throw failure instanceof KioskError
        ? failure
        : new KioskError(ErrorCodes.CAMERA_READ_FAILED, (failure as Error).message, { cause: failure });
    }
    const rec = ctx.recorder.end() as PresentationRecord;
    done.push(rec);
    progress.onPresentation?.(rec, i, presentations.length);
  }
  return done;
}

/**
 * A live drill on the configured camera: the pipeline runs all along; frames count only while
 * a presentation is open. After `stop`, decisions of the faces already seen still arrive
 * (up to session_timeout_ms + track_lost_ms, or until each has one), then it is recorded.
 */
export class LiveDrill {
  private pipeline: CameraPipeline | null = null;
  private state: CameraState = 'starting';
  private lost: { code: string; message: string } | null = null;
  private closing: Promise<PresentationRecord | null> | null = null;

  constructor(
    private readonly ctx: DrillContext,
    readonly cameraId: string,
    private readonly onCamera?: (state: CameraState, err?: Error) => void,
  ) {}

  async start(): Promise<void> {
    const cam = this.ctx.config.cameras.find((c) => c.id === this.cameraId);
    if (!cam) {
      const ids = this.ctx.config.cameras.map((c) => c.id).join(', ');
      throw new KioskError(ErrorCodes.USAGE, `no camera "${this.cameraId}" in the config (cameras: ${ids})`);
    }
    const pipeline: CameraPipeline = new CameraPipeline({
      cameraId: cam.id,
      camera: createSupervisedCamera(cam, {
        repoRoot: packageRoot,
        onEvent: (ev) => pipeline.sourceChanged(ev),
      }),
      detector: this.ctx.detector,
      liveness: this.ctx.liveness,
      config: this.ctx.config,
      log: this.ctx.log,
      stages: noStages,
      sink: { decision: (d) => this.ctx.recorder.onDecision(d) },
      onFrame: (r) => this.ctx.recorder.onFrame(r),
      onState: (state, err) => {
        this.state = state;
        if (state === 'down' || state === 'failed' || state === 'ended') {
          this.lost = cameraError(err ?? new Error(`camera ${state}`));
          if (this.ctx.recorder.active) this.ctx.recorder.end(this.lost);
        }
        this.onCamera?.(state, err);
      },
    });
    // Every frame of a presentation is scored, also after the person was decided.
    pipeline.scoreHeldFaces = true;
    this.pipeline = pipeline;
    await pipeline.start();
  }

  get cameraState(): CameraState {
    return this.state;
  }

  get active(): PresentationRecord | null {
    return this.ctx.recorder.active;
  }

  begin(spec: PresentationSpec): void {
    if (this.closing !== null)
      throw new KioskError(ErrorCodes.DRILL_INVALID, 'the previous presentation is still closing');
    if (this.state !== 'running')
      throw new KioskError(
        ErrorCodes.CAMERA_READ_FAILED,
        `camera ${this.cameraId} is ${this.state}: wait for it`,
      );
    // One decision per presence: whoever was decided before this presentation is decided again.
    this.pipeline?.releaseHeld();
    this.ctx.recorder.begin(spec, this.cameraId);
  }

  /** Closes the open presentation; resolves with its record (null if none, or lost with the camera). */
  stop(): Promise<PresentationRecord | null> {
    if (!this.closing)
      this.closing = this.ctx.recorder.finish(this.ctx.config.decision).finally(() => {
        this.closing = null;
      });
    return this.closing;
  }

  /** Ends the drill: an open presentation is kept as interrupted. */
  async close(): Promise<void> {
    if (this.closing !== null) await this.closing;
    if (this.ctx.recorder.active)
      this.ctx.recorder.end({ code: 'drill_stopped', message: 'drill stopped during the presentation' });
    await this.pipeline?.stop();
  }
}
