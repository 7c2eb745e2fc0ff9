/**
 * What a drill records, and where: `<state_dir>/drills/<id>/` holds `drill.json` (what was
 * measured: camera, model sha256, config hash, thresholds in force) and `presentations.jsonl`
 * (one line per presentation, appended and fsynced as each one ends, so a crash or a lost
 * camera loses nothing already recorded). No image is stored unless the installer opted in
 * (`images/`, face crops only). Old drills are removed by `applyDrillRetention`.
 *
 * The recorder consumes the pipeline's per-frame results (`FrameResult`, the same callback the
 * status page's preview uses), so the drill measures exactly what production decides.
 */
import {
  appendFileSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { configHash } from '../../config/config-hash.js';
import type { Config } from '../../config/schema.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { cv } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { readCheckedText } from '../../core/file-rule.js';
import type {
  Box,
  DecisionConfig,
  DecisionReason,
  FaceQuality,
  QualityGate,
  SessionDecision,
} from '../decision/types.js';
import type { LivenessModel, ModelInfo } from '../liveness/liveness-model.js';
import type { Verdict } from '../liveness/verdict.js';
import type { FrameResult } from '../pipeline/pipeline.js';

export const DRILL_RECORD_VERSION = 1;

/** drill.json, report.json, applied.json: small JSON documents (read by core/file-rule.ts). */
export const MAX_DRILL_FILE_BYTES = 16 * 2 ** 20;
/** presentations.jsonl: one line per presentation. */
export const MAX_PRESENTATIONS_BYTES = 256 * 2 ** 20;

export type PresentationLabel = 'bona_fide' | 'attack';

export interface FaceRecord {
  trackId: number;
  box: Box;
  quality: FaceQuality;
  qualityGate: QualityGate | null;
  verdict: Verdict | null;
  scores: Record<string, number> | null;
  facesInView: number;
}

export interface FrameRecord {
  /** Monotonic capture time, ms. */
  t: number;
  faces: FaceRecord[];
}

export interface DecisionRecord {
  trackId: number;
  decision: SessionDecision['decision'];
  reason: DecisionReason;
  qualityGate?: QualityGate;
  frames: { seen: number; verified: number };
  scores: Record<string, number>;
  firstFrameMono: number;
  decidedAtMono: number;
}

export interface PresentationSpec {
  label: PresentationLabel;
  /** Attack type (PAI species): print, replay, mask, ... ; null for bona fide. */
  attackType: string | null;
  /** Who presented (bona fide) or which instrument; free text, optional. */
  subject: string | null;
}

export interface PresentationRecord extends PresentationSpec {
  index: number;
  cameraId: string;
  /** For scripted drills: the video file used as the camera. */
  source: string | null;
  startedAt: string;
  endedAt: string;
  /** interrupted: the camera was lost or the drill stopped; kept, but not counted. */
  status: 'complete' | 'interrupted';
  interruption: { code: string; message: string } | null;
  frames: FrameRecord[];
  decisions: DecisionRecord[];
  /** Face crops written under images/ (only when the installer opted in). */
  images: string[];
  /** Frames not kept because the presentation ran past MAX_FRAMES_PER_PRESENTATION. */
  framesOmitted?: number;
}

export interface DrillMeta {
  version: typeof DRILL_RECORD_VERSION;
  id: string;
  startedAt: string;
  software: string;
  cameraIds: string[];
  model: Pick<ModelInfo, 'name' | 'version' | 'sha256' | 'family' | 'purpose'>;
  configHash: string;
  thresholds: Record<string, number>;
  decision: DecisionConfig;
  detector: string;
  storeImages: boolean;
}

export interface DrillRecord {
  dir: string;
  meta: DrillMeta;
  presentations: PresentationRecord[];
}

export function drillsDir(stateDir: string): string {
  return path.join(stateDir, 'drills');
}

/** A sortable, file-name-safe id from the start time. */
export function newDrillId(now = new Date()): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

export function toDecisionRecord(d: SessionDecision): DecisionRecord {
  return {
    trackId: d.trackId,
    decision: d.decision,
    reason: d.reason,
    ...(d.qualityGate ? { qualityGate: d.qualityGate } : {}),
    frames: d.frames,
    scores: d.scores,
    firstFrameMono: d.firstFrameMono,
    decidedAtMono: d.decidedAtMono,
  };
}

/** The drill's files; every write is durable when it returns. */
export class DrillStore {
  readonly dir: string;
  constructor(
    stateDir: string,
    readonly meta: DrillMeta,
  ) {
    this.dir = path.join(drillsDir(stateDir), meta.id);
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileAtomic(path.join(this.dir, 'drill.json'), `${JSON.stringify(meta, null, 2)}\n`);
    } catch (cause) {
      throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot create the drill record in ${this.dir}`, {
        cause,
      });
    }
  }

  append(p: PresentationRecord): void {
    const file = path.join(this.dir, 'presentations.jsonl');
    try {
      appendFileSync(file, `${JSON.stringify(p)}\n`);
      const fd = openSync(file, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (cause) {
      throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot append to ${file}`, { cause });
    }
  }

  /** A face crop (opt-in only): returns the path relative to the drill directory. */
  writeImage(name: string, jpeg: Buffer): string {
    const rel = path.join('images', name);
    mkdirSync(path.join(this.dir, 'images'), { recursive: true });
    writeFileSync(path.join(this.dir, rel), jpeg);
    return rel;
  }
}

/** What decides during a new drill, as its record states it. */
export interface DrillSetup {
  config: Config;
  software: string;
  cameraIds: string[];
  liveness: Pick<LivenessModel, 'info' | 'activeThresholds'>;
  detector: string;
  /** Face crops kept (opt-in on the device only). */
  storeImages: boolean;
}

/**
 * Starts a drill, for the scripted runner and the status page alike: a new id, its
 * `drill.json` under state_dir (model, thresholds in force, config hash, detector), older
 * drills beyond the default retention removed, and a recorder on it.
 */
export function startDrillRecord(setup: DrillSetup): {
  id: string;
  store: DrillStore;
  recorder: DrillRecorder;
} {
  const { config, liveness, storeImages } = setup;
  const m = liveness.info;
  const id = newDrillId();
  const store = new DrillStore(config.device.state_dir, {
    version: DRILL_RECORD_VERSION,
    id,
    startedAt: new Date().toISOString(),
    software: setup.software,
    cameraIds: setup.cameraIds,
    model: { name: m.name, version: m.version, sha256: m.sha256, family: m.family, purpose: m.purpose },
    configHash: configHash(config),
    thresholds: { ...liveness.activeThresholds },
    decision: config.decision,
    detector: setup.detector,
    storeImages,
  });
  applyDrillRetention(config.device.state_dir, DEFAULT_DRILL_RETENTION, id);
  return { id, store, recorder: new DrillRecorder(store, { storeImages }) };
}

/** Reads a drill back; a torn last line (a crash mid-append) is skipped, not fatal. */
export function readDrill(dir: string): DrillRecord {
  let meta: DrillMeta;
  try {
    meta = JSON.parse(
      readCheckedText(path.join(dir, 'drill.json'), {
        what: 'drill.json',
        maxBytes: MAX_DRILL_FILE_BYTES,
        code: ErrorCodes.DRILL_INVALID,
      }),
    ) as DrillMeta;
  } catch (cause) {
    throw new KioskError(ErrorCodes.DRILL_INVALID, `${dir} is not a drill record (no readable drill.json)`, {
      cause,
    });
  }
  let text = '';
  try {
    text = readCheckedText(path.join(dir, 'presentations.jsonl'), {
      what: 'presentations.jsonl',
      maxBytes: MAX_PRESENTATIONS_BYTES,
      code: ErrorCodes.DRILL_INVALID,
    });
  } catch {
    // no presentation finished yet
  }
  const presentations: PresentationRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      presentations.push(JSON.parse(line) as PresentationRecord);
    } catch {
      // torn write at a crash: everything before it is intact
    }
  }
  return { dir, meta, presentations };
}

export interface DrillRetention {
  /** Keep at most this many drills (newest first). */
  maxDrills: number;
  /** Remove drills older than this. */
  maxAgeDays: number;
}

export const DEFAULT_DRILL_RETENTION: DrillRetention = { maxDrills: 20, maxAgeDays: 365 };

/** Removes drills beyond the retention limits; returns the ids removed. `keep` is never removed. */
export function applyDrillRetention(
  stateDir: string,
  limits: DrillRetention,
  keep: string | null = null,
  nowMs = Date.now(),
): string[] {
  const root = drillsDir(stateDir);
  let ids: string[];
  try {
    ids = readdirSync(root).filter((n) => statSync(path.join(root, n)).isDirectory());
  } catch {
    return [];
  }
  const byAge = ids
    .map((id) => ({ id, mtime: statSync(path.join(root, id)).mtimeMs }))
    .sort((a, b) => b.id.localeCompare(a.id));
  const removed: string[] = [];
  byAge.forEach(({ id, mtime }, i) => {
    if (id === keep) return;
    if (i >= limits.maxDrills || nowMs - mtime > limits.maxAgeDays * 86_400_000) {
      rmSync(path.join(root, id), { recursive: true, force: true });
      removed.push(id);
    }
  });
  return removed;
}

/** The newest drill id in the state directory, or null. */
export function latestDrillId(stateDir: string): string | null {
  try {
    const ids = readdirSync(drillsDir(stateDir)).sort();
    return ids.at(-1) ?? null;
  } catch {
    return null;
  }
}

const MAX_IMAGES_PER_PRESENTATION = 5;
/**
 * A presentation is one attempt (seconds). A live one left open is not allowed to grow memory
 * and the record without bound: frames past this (over 3 minutes at 15 fps) are counted, not kept.
 */
export const MAX_FRAMES_PER_PRESENTATION = 3000;

/**
 * Collects one presentation at a time from the pipeline's frame results. Frames and decisions
 * seen while no presentation is open are ignored (the installer is getting ready).
 */
export class DrillRecorder {
  private current: (PresentationRecord & { closing: boolean }) | null = null;
  private count = 0;

  constructor(
    private readonly store: DrillStore,
    private readonly opts: { storeImages: boolean } = { storeImages: false },
  ) {}

  get active(): PresentationRecord | null {
    return this.current;
  }

  get recorded(): number {
    return this.count;
  }

  begin(spec: PresentationSpec, cameraId: string, source: string | null = null): void {
    if (this.current) throw new KioskError(ErrorCodes.DRILL_INVALID, 'a presentation is already open');
    if (spec.label === 'attack' && !spec.attackType)
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        'an attack presentation needs its type (print, replay, ...)',
      );
    this.current = {
      ...spec,
      attackType: spec.label === 'attack' ? spec.attackType : null,
      index: this.count,
      cameraId,
      source,
      startedAt: new Date().toISOString(),
      endedAt: '',
      status: 'complete',
      interruption: null,
      frames: [],
      decisions: [],
      images: [],
      closing: false,
    };
  }

  /** The pipeline's onFrame callback. Copies what it keeps (the frame's Mat is released after). */
  onFrame(r: FrameResult): void {
    const p = this.current;
    if (!p || r.cameraId !== p.cameraId) return;
    for (const d of r.decisions) p.decisions.push(toDecisionRecord(d));
    if (p.closing) return;
    if (p.frames.length >= MAX_FRAMES_PER_PRESENTATION) {
      p.framesOmitted = (p.framesOmitted ?? 0) + 1;
      return;
    }
    p.frames.push({
      t: r.frame.capturedMono,
      faces: r.faces.map((f) => ({
        trackId: f.trackId,
        box: f.box,
        quality: f.quality,
        qualityGate: f.qualityGate,
        verdict: f.verdict,
        scores: f.scores,
        facesInView: f.facesInView,
      })),
    });
    if (this.opts.storeImages && p.images.length < MAX_IMAGES_PER_PRESENTATION) {
      for (const f of r.faces) {
        if (f.verdict === null) continue;
        const [x, y, w, h] = f.box.map((v) => Math.round(v)) as Box;
        const rx = Math.max(0, x);
        const ry = Math.max(0, y);
        const rw = Math.min(r.frame.width - rx, w);
        const rh = Math.min(r.frame.height - ry, h);
        if (rw < 2 || rh < 2) continue;
        const crop = r.frame.mat.getRegion(new cv.Rect(rx, ry, rw, rh));
        try {
          const name = `p${String(p.index).padStart(3, '0')}-f${p.frames.length}-t${f.trackId}.jpg`;
          p.images.push(this.store.writeImage(name, cv.imencode('.jpg', crop)));
        } finally {
          crop.release();
        }
        break;
      }
    }
  }

  /** Decisions delivered outside onFrame (the pipeline's flush at the end of a source). */
  onDecision(d: SessionDecision): void {
    const p = this.current;
    if (!p || d.cameraId !== p.cameraId) return;
    if (!p.decisions.some((x) => x.trackId === d.trackId && x.decidedAtMono === d.decidedAtMono))
      p.decisions.push(toDecisionRecord(d));
  }

  /** No more frames count; decisions of tracks already seen still arrive until `end`. */
  closeFrames(): void {
    if (this.current) this.current.closing = true;
  }

  /**
   * Closes the open presentation in a live drill: no more frames count, and the decisions of the
   * faces already seen may still arrive (up to session_timeout_ms + track_lost_ms, or until each
   * has one); then it is recorded. Null when none was open or the camera ended it meanwhile.
   */
  async finish(
    cfg: Pick<DecisionConfig, 'session_timeout_ms' | 'track_lost_ms'>,
  ): Promise<PresentationRecord | null> {
    const p = this.current;
    if (!p) return null;
    p.closing = true;
    const deadline = Date.now() + cfg.session_timeout_ms + cfg.track_lost_ms + 500;
    const tracks = new Set(p.frames.flatMap((f) => f.faces.map((o) => o.trackId)));
    while (Date.now() < deadline && this.current === p) {
      const decided = new Set(p.decisions.map((d) => d.trackId));
      if ([...tracks].every((t) => decided.has(t))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.current === p ? this.end() : null;
  }

  /** Ends the open presentation and appends it to the record (interrupted: kept, not counted). */
  end(interruption: { code: string; message: string } | null = null): PresentationRecord | null {
    const p = this.current;
    if (!p) return null;
    this.current = null;
    const { closing: _closing, ...rec } = p;
    const done: PresentationRecord = {
      ...rec,
      endedAt: new Date().toISOString(),
      status: interruption ? 'interrupted' : 'complete',
      interruption,
    };
    this.store.append(done);
    this.count++;
    return done;
  }
}
