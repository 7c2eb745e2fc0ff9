/**
 * A drill inside the running daemon, driven from the status page (start, label, stop). It
 * adds no pipeline: it listens to the daemon's own per-frame results and camera events (the
 * same `frame` and `camera` events the preview and the audit use), so it measures exactly
 * what the gate decides, and it only listens while a drill is running.
 */
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import type { CameraState, FrameResult } from '../pipeline/pipeline.js';
import {
  type DrillRecorder,
  type DrillStore,
  type PresentationRecord,
  readDrill,
  startDrillRecord,
} from './record.js';
import { writeReport } from './report.js';

type CameraEvent = { cameraId: string; state: CameraState; error: string | null };

/** The daemon's events the drill listens to (the Daemon satisfies it). */
export interface DrillEvents {
  on(event: 'frame', fn: (r: FrameResult) => void): unknown;
  on(event: 'camera', fn: (e: CameraEvent) => void): unknown;
  off(event: 'frame', fn: (r: FrameResult) => void): unknown;
  off(event: 'camera', fn: (e: CameraEvent) => void): unknown;
}

export interface DrillHost {
  config: Config;
  log: Logger;
  software: string;
  liveness: () => LivenessModel | null;
  detectorName: () => string | null;
  events: DrillEvents;
  /** The camera's pipeline, to score held people and release them per presentation. */
  pipeline?: (cameraId: string) => { scoreHeldFaces: boolean; releaseHeld(): void } | null;
}

export interface DrillStatus {
  running: boolean;
  id: string | null;
  camera: string | null;
  /** The open presentation, if any. */
  presentation: {
    label: string;
    attack_type: string | null;
    subject: string | null;
    frames: number;
    decisions: string[];
  } | null;
  recorded: number;
  /** The last finished presentation, one line. */
  last: string | null;
  /** After stop: where the record and report are. */
  dir: string | null;
}

export interface LabelRequest {
  /** 'none' closes the open presentation without opening another. */
  label: 'bona_fide' | 'attack' | 'none';
  type?: string | undefined;
  subject?: string | undefined;
}

/** What the status page may ask of a drill. */
export interface DrillControl {
  status(): DrillStatus;
  start(camera?: string): DrillStatus;
  label(req: LabelRequest): Promise<DrillStatus>;
  stop(): Promise<DrillStatus>;
  /** The daemon is stopping: an open presentation is kept as interrupted; no report. */
  abort(): void;
}

function summary(p: PresentationRecord): string {
  const what = p.label === 'bona_fide' ? 'bona fide' : `attack ${p.attackType}`;
  const accepted = p.decisions.some((d) => d.decision === 'accept');
  const how =
    p.status === 'interrupted'
      ? `interrupted (${p.interruption?.message})`
      : accepted
        ? 'accepted'
        : 'not accepted';
  return `#${p.index + 1} ${what}: ${p.frames.length} frames, ${p.decisions.length} decisions, ${how}`;
}

export class DaemonDrill implements DrillControl {
  private store: DrillStore | null = null;
  private recorder: DrillRecorder | null = null;
  private camera: string | null = null;
  private last: string | null = null;
  private lastDir: string | null = null;
  private busy: Promise<unknown> | null = null;

  private readonly onFrame = (r: FrameResult) => this.recorder?.onFrame(r);
  private readonly onCamera = (e: CameraEvent) => {
    if (e.cameraId !== this.camera || !this.recorder?.active) return;
    if (e.state === 'down' || e.state === 'failed' || e.state === 'ended') {
      const p = this.recorder.end({
        code: ErrorCodes.CAMERA_READ_FAILED,
        message: e.error ?? `camera ${e.state}`,
      });
      if (p) this.last = summary(p);
    }
  };

  constructor(private readonly host: DrillHost) {}

  status(): DrillStatus {
    const p = this.recorder?.active ?? null;
    return {
      running: this.store !== null,
      id: this.store?.meta.id ?? null,
      camera: this.camera,
      presentation: p
        ? {
            label: p.label,
            attack_type: p.attackType,
            subject: p.subject,
            frames: p.frames.length,
            decisions: p.decisions.map((d) => `${d.decision} ${d.reason}`),
          }
        : null,
      recorded: this.recorder?.recorded ?? 0,
      last: this.last,
      dir: this.store?.dir ?? this.lastDir,
    };
  }

  start(camera?: string): DrillStatus {
    if (this.store)
      throw new KioskError(ErrorCodes.DRILL_INVALID, `drill ${this.store.meta.id} is already running`);
    const { config } = this.host;
    const cam = camera ?? config.cameras[0]?.id;
    if (!cam || !config.cameras.some((c) => c.id === cam))
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `no camera "${camera}" (cameras: ${config.cameras.map((c) => c.id).join(', ')})`,
      );
    const model = this.host.liveness();
    if (!model) throw new KioskError(ErrorCodes.DRILL_INVALID, 'no liveness model loaded');
    const { id, store, recorder } = startDrillRecord({
      config,
      software: this.host.software,
      cameraIds: [cam],
      liveness: model,
      detector: this.host.detectorName() ?? 'unknown',
      // Never from the web page: face images are kept only when the installer opts in on the device.
      storeImages: false,
    });
    this.store = store;
    this.recorder = recorder;
    this.camera = cam;
    this.last = null;
    this.host.events.on('frame', this.onFrame);
    this.host.events.on('camera', this.onCamera);
    this.scoreHeld(true);
    this.host.log.info({ drill: id, camera: cam, dir: store.dir }, `drill ${id} started on camera ${cam}`);
    return this.status();
  }

  /** One change at a time: a label or stop while the previous presentation is closing waits for it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = (this.busy ?? Promise.resolve()).catch(() => undefined).then(fn);
    this.busy = run;
    return run;
  }

  label(req: LabelRequest): Promise<DrillStatus> {
    return this.serial(async () => {
      const rec = this.recorder;
      if (!rec || !this.camera)
        throw new KioskError(ErrorCodes.DRILL_INVALID, 'no drill is running: start one first');
      const done = await rec.finish(this.host.config.decision);
      if (done) this.last = summary(done);
      if (req.label !== 'none') {
        // One decision per presence: the person already decided before this presentation
        // must be decided again within it.
        this.host.pipeline?.(this.camera)?.releaseHeld();
        rec.begin(
          {
            label: req.label,
            attackType: req.label === 'attack' ? (req.type ?? null) : null,
            subject: req.subject ?? null,
          },
          this.camera,
        );
      }
      return this.status();
    });
  }

  /** Scores of people already decided are wanted while a drill runs on this camera. */
  private scoreHeld(on: boolean): void {
    const p = this.camera ? this.host.pipeline?.(this.camera) : null;
    if (p) p.scoreHeldFaces = on;
  }

  abort(): void {
    if (!this.recorder) return;
    const p = this.recorder.end({
      code: 'drill_stopped',
      message: 'the daemon stopped during the presentation',
    });
    if (p) this.last = summary(p);
    this.scoreHeld(false);
    this.host.events.off('frame', this.onFrame);
    this.host.events.off('camera', this.onCamera);
    this.lastDir = this.store?.dir ?? this.lastDir;
    this.store = null;
    this.recorder = null;
    this.camera = null;
  }

  stop(): Promise<DrillStatus> {
    return this.serial(async () => {
      const rec = this.recorder;
      const store = this.store;
      if (!rec || !store) throw new KioskError(ErrorCodes.DRILL_INVALID, 'no drill is running');
      const done = await rec.finish(this.host.config.decision);
      if (done) this.last = summary(done);
      this.scoreHeld(false);
      this.host.events.off('frame', this.onFrame);
      this.host.events.off('camera', this.onCamera);
      this.store = null;
      this.recorder = null;
      this.lastDir = store.dir;
      const record = readDrill(store.dir);
      if (record.presentations.some((p) => p.status === 'complete')) writeReport(record, null);
      this.host.log.info(
        { drill: store.meta.id, presentations: record.presentations.length },
        `drill ${store.meta.id} stopped`,
      );
      const s = { ...this.status(), camera: this.camera, recorded: rec.recorded };
      this.camera = null;
      return s;
    });
  }
}
