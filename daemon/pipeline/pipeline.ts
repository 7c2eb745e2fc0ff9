/**
 * One camera's pipeline: newest frame -> detect -> track -> quality gates -> align + liveness
 * -> fuse into per-person decisions. Frames are finished one at a time, in order; the next
 * frames' detections overlap the rest of the current one (detect-ahead), so at most
 * 1 + DETECT_AHEAD frames are in flight. The driver drops what arrives meanwhile (newest frame wins), so a slow stage
 * never builds a queue.
 */
import type { Config } from '../../config/schema.js';
import type { Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { type JpegScale, releaseFrame, scaleFor } from '../../drivers/camera/jpeg.js';
import { uprightRotation } from '../../drivers/camera/orient.js';
import type { SourceEvent } from '../../drivers/camera/supervised.js';
import type { CameraDriver, Frame } from '../../drivers/camera/types.js';
import type { PipelineSink } from '../contract/contract-sink.js';
import { faceLook } from '../decision/appearance.js';
import { emptyFusionState, fuse, releasePresence, trackKey } from '../decision/fusion.js';
import { GuidanceLimiter, type GuidanceState, guidanceFor, guidedPresence } from '../decision/guidance.js';
import { IouTracker } from '../decision/tracker.js';
import type { FrameObservation, FusionState, SessionDecision } from '../decision/types.js';
import { scaleDetection } from '../detect/scale.js';
import type { FaceDetection, FaceDetector } from '../detect/types.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import { faceStep, reducedFaceScale } from './face-step.js';
import { SceneGate, type SceneGateConfig } from './scene-gate.js';

export type Stage = 'capture' | 'detect' | 'align' | 'infer' | 'decide' | 'publish';

export interface StageRecorder {
  record(stage: Stage, ms: number): void;
}

/** 'down': the source was lost and is being reopened; the rest of the daemon keeps running. */
export type CameraState = 'starting' | 'running' | 'down' | 'ended' | 'failed' | 'stopped';

export interface PipelineCounters {
  frames: number;
  processed: number;
  stale: number;
  faces: number;
  inferences: number;
  decisions: number;
  /** Warnings that faces look sideways or upside down (cameras[].rotate wrong). */
  tiltWarnings: number;
  /** Faces detected below the score needed to decide (reported in guidance, not decided on). */
  weakFaces: number;
  /** Frames the scene gate let pass without detection (nobody in view, nothing changed); counted in `processed` too. */
  gated: number;
  /** JPEG frames that did not decode (KIOSK_E_CAMERA_READ_FAILED): skipped, the camera goes on. */
  badFrames: number;
  /** JPEG frames whose per-face step read a reduced decode (decode 'reduced'). */
  reducedFaceFrames: number;
}

/** What one processed frame showed, for observers (preview overlay, metrics). */
export interface FrameResult {
  cameraId: string;
  frame: Frame;
  /**
   * presence (after this frame): 'held' when the face is a person already accepted or rejected
   * (one decision per presence), 'new' when it is a presence still to be decided.
   */
  faces: (FrameObservation & {
    landmarks: FaceDetection['landmarks'];
    detectorScore: number;
    presence: 'held' | 'new';
  })[];
  /** Detections not considered (multiple_faces: largest). */
  ignored: number;
  decisions: SessionDecision[];
}

export interface PipelineDeps {
  cameraId: string;
  camera: CameraDriver;
  detector: FaceDetector;
  liveness: LivenessModel;
  config: Pick<Config, 'quality' | 'decision'>;
  log: Logger;
  stages: StageRecorder;
  /**
   * Where decisions and guidance go: the contract sink in the daemon (contract/contract-sink.ts),
   * a recorder in the drill, a list in tests. `sink.decision` is awaited (the `publish` stage).
   * `sink.guidance`: the guidance state changed, or the person held (rate-limited:
   * GUIDANCE_MIN_INTERVAL_MS); `presence` holds monotonic instants (same clock as `now`).
   */
  sink: PipelineSink;
  /**
   * Detector score a face needs to be decided on (detector.score_threshold); weaker faces the
   * detector returned are counted (`weakFaces`) and shown in guidance, never decided on.
   * Undefined: every face the detector returns is decided on.
   */
  decideFrom?: number;
  onState?: (state: CameraState, error?: KioskError | Error) => void;
  /**
   * Every processed frame with what was found in it (status page preview, metrics). Must be cheap.
   * The frame's Mat is released after the call: copy it to keep it.
   */
  onFrame?: (result: FrameResult) => void;
  /**
   * The scene gate (scene-gate.ts): an empty, still scene is detected only idle_fps times a
   * second. Absent or disabled: every frame is detected.
   */
  sceneGate?: SceneGateConfig;
  /**
   * JPEG frames (cameras[].decode): 'reduced' lets the per-face step read a reduced decode
   * where it still serves every face (face-step.ts, reducedFaceScale); otherwise (and by
   * default) it reads the full decode.
   */
  decode?: 'auto' | 'reduced' | 'full';
  now?: () => number;
}

/** Faces seen sideways or upside down in most of this many face frames: the camera's rotate is wrong. */
const TILT_WINDOW = 30;
/** The tilt warning is logged at most this often per camera. */
const TILT_WARN_INTERVAL_MS = 60_000;

/** A camera's undecodable frames are logged at most this often (each is counted). */
const BAD_FRAME_LOG_MS = 10_000;

/** Guidance is published on change, at most this often per camera. */
export const GUIDANCE_MIN_INTERVAL_MS = 500;

/**
 * Frames taken ahead of the one being finished, their detections queued in the detector's
 * inference lane: with two lanes the detector then never waits for the liveness model, and
 * the two networks keep both cores busy (bench/performance.md, change 11). A live camera's
 * slot keeps only its newest frame, so this adds at most one frame of latency when the
 * pipeline is the bottleneck, and none when the camera is.
 */
export const DETECT_AHEAD = 2;

/** A frame taken from the camera, with its detection under way. */
interface Pulled {
  frame: Frame;
  detected: Promise<Detected>;
}

/**
 * A frame after detection; faces null: too old to process (max_frame_age_ms), or `gated`: the
 * scene gate skipped the detector (nobody in view at the last look, nothing changed since).
 */
interface Detected {
  frame: Frame;
  faces: FaceDetection[] | null;
  gated?: boolean;
  /** JPEG frames: the decode scale the per-face step reads (1: full). */
  faceScale?: JpegScale;
}

function noop(): void {}

/** request/verify releases a camera's held people at most this often; requests in between share the wait. */
export const VERIFY_MIN_INTERVAL_MS = 1000;
/** request/verify calls waiting on one camera, at most (more are refused busy). */
const MAX_VERIFY_WAITERS = 16;

export class CameraPipeline {
  private fusion: FusionState = emptyFusionState();
  private readonly tracker: IouTracker;
  private running: Promise<void> | null = null;
  private inFrame: Promise<unknown> | null = null;
  private stopping = false;
  private state: CameraState = 'starting';
  readonly counters: PipelineCounters = {
    frames: 0,
    processed: 0,
    stale: 0,
    faces: 0,
    inferences: 0,
    decisions: 0,
    tiltWarnings: 0,
    weakFaces: 0,
    gated: 0,
    badFrames: 0,
    reducedFaceFrames: 0,
  };
  /** Monotonic time a bad frame was last logged (at most one warning per BAD_FRAME_LOG_MS). */
  private badFrameLoggedMono = Number.NEGATIVE_INFINITY;
  private readonly gate: SceneGate | null;
  /** The newest frame's detection (scene gate: a frame about to be skipped waits for it). */
  private lastDetection: Promise<unknown> | null = null;
  private readonly now: () => number;
  private releaseRequested = false;
  /**
   * Site drill: classify people already decided too, so every frame of a presentation has its
   * scores. Decisions are unchanged: fusion skips the observations of a held track.
   */
  scoreHeldFaces = false;
  private lastReleaseMono = Number.NEGATIVE_INFINITY;
  private readonly verifyWaiters: ((d: SessionDecision | null) => void)[] = [];
  private readonly guidanceLimiter = new GuidanceLimiter(GUIDANCE_MIN_INTERVAL_MS);
  /** Per frame with faces: the rotation its first face needs to stand upright (0: upright). */
  private readonly tilt: number[] = [];
  private tiltWarnedMono = Number.NEGATIVE_INFINITY;
  /** What the person in front of the camera is told now (the last frame's state). */
  guidance: GuidanceState = 'idle';
  /** Monotonic time the loop last finished a frame (or started): the watchdog's heartbeat. */
  lastProgressMono: number;

  constructor(private readonly deps: PipelineDeps) {
    this.tracker = new IouTracker(deps.config.decision);
    this.gate = deps.sceneGate?.enabled ? new SceneGate(deps.sceneGate) : null;
    this.now = deps.now ?? (() => performance.now());
    this.lastProgressMono = this.now();
  }

  cameraStats() {
    return this.deps.camera.stats();
  }

  get cameraState(): CameraState {
    return this.state;
  }

  private setState(state: CameraState, error?: Error): void {
    this.state = state;
    this.deps.onState?.(state, error);
  }

  /** Start the loop; resolves once the camera is open. Rejects with the camera's error when it cannot open. */
  async start(): Promise<void> {
    await this.deps.camera.open();
    // A supervised camera missing at start reported 'down' during open(): keep that.
    if (this.state === 'starting') this.setState('running');
    this.running = this.loop();
  }

  /**
   * A supervised source was lost or restored. Lost: open sessions end now (face_lost), not
   * when frames come back. Restored: the watchdog's clock restarts with the frames.
   */
  async sourceChanged(ev: SourceEvent): Promise<void> {
    const { log, cameraId } = this.deps;
    if (ev.type === 'lost') {
      log.warn(
        { camera: cameraId, reason: ev.reason, err: ev.error },
        `camera ${cameraId} lost (${ev.reason}): ${ev.error.message}; reconnecting`,
      );
      this.setState('down', ev.error);
      await this.flush();
      // Nobody can be followed through an outage: whoever is in view when the camera is back
      // is a new presence and is decided anew (held people and retry waits are released).
      this.fusion = releasePresence(this.fusion, cameraId);
    } else if (ev.type === 'restored') {
      log.info(
        { camera: cameraId, downMs: ev.downMs, attempts: ev.attempts, openToFrameMs: ev.openToFrameMs },
        `camera ${cameraId} restored after ${ev.downMs} ms (${ev.attempts} attempts)`,
      );
      this.lastProgressMono = this.now();
      this.setState('running');
    }
  }

  private async loop(): Promise<void> {
    const { log, camera } = this.deps;
    const frames = camera.frames()[Symbol.asyncIterator]();
    let cur: Pulled | null = null;
    /** Frames taken after `cur`, their detections under way, oldest first (DETECT_AHEAD at most). */
    const ahead: Promise<Pulled | null>[] = [];
    try {
      cur = await this.waitFor(this.pull(frames));
      while (cur && !this.stopping) {
        const detected = await cur.detected;
        // Detect-ahead: the next frames' detections are queued now, so their pre-processing
        // overlaps this frame's quality gates, alignment and liveness (in the other inference
        // lane), and the detector's lane finds the next request waiting instead of idling.
        // Frames are still finished strictly in order.
        while (!this.stopping && ahead.length < DETECT_AHEAD) {
          const p = this.pull(frames);
          p.catch(noop);
          ahead.push(p);
        }
        try {
          this.inFrame = this.finishFrame(detected);
          await this.inFrame;
        } finally {
          this.inFrame = null;
          // Mat memory is invisible to V8 (core/cv.ts), so a frame is freed as soon as it is
          // done, not at some later GC: RSS stays flat. Frame observers copy what they keep.
          releaseFrame(cur.frame);
          cur = null;
        }
        const next = ahead.shift();
        if (!next) break;
        cur = await this.waitFor(next);
      }
      if (!this.stopping) {
        log.warn({ camera: this.deps.cameraId }, 'camera source ended');
        await this.flush();
        this.setState('ended');
      } else {
        // Stopping: the frame in flight has finished; open sessions still get their answer.
        await this.flush();
      }
    } catch (e) {
      const err = asError(e);
      log.error({ camera: this.deps.cameraId, err }, `camera ${this.deps.cameraId} failed: ${err.message}`);
      await this.flush();
      this.setState('failed', err);
    } finally {
      await this.discard(cur, ahead, frames);
      this.gate?.close();
    }
  }

  /** The 'capture' stage: how long the loop waited for a frame once it was ready for one. */
  private async waitFor(pulled: Promise<Pulled | null>): Promise<Pulled | null> {
    const t = this.now();
    const p = await pulled;
    if (p) this.deps.stages.record('capture', this.now() - t);
    return p;
  }

  /** Take the next frame and start detecting it. */
  private async pull(frames: AsyncIterator<Frame>): Promise<Pulled | null> {
    const r = await frames.next();
    if (r.done) return null;
    const detected = this.detectFrame(r.value);
    detected.catch(noop); // awaited by the loop, or by discard()
    return { frame: r.value, detected };
  }

  /** Frames pulled but not finished (stop, failure): free each once its detection settled; end the stream. */
  private async discard(
    cur: Pulled | null,
    ahead: Promise<Pulled | null>[],
    frames: AsyncIterator<Frame>,
  ): Promise<void> {
    const pulled = await Promise.all(ahead.map((p) => p.catch(() => null)));
    for (const p of [cur, ...pulled]) {
      if (!p) continue;
      await p.detected.catch(noop);
      releaseFrame(p.frame);
    }
    await frames.return?.().catch(noop);
  }

  /** Process one frame; public so tests and benchmarks can drive the pipeline frame by frame. */
  async processFrame(frame: Frame): Promise<SessionDecision[]> {
    return this.finishFrame(await this.detectFrame(frame));
  }

  /** First half of a frame: the stale check, the scene gate and the detector (no fusion state is touched). */
  private detectFrame(frame: Frame): Promise<Detected> {
    // The previous frame's detection, taken before this one starts: the scene gate may wait
    // for it, never for this frame's own (which would wait forever).
    const p = this.runDetection(frame, this.lastDetection);
    this.lastDetection = p.catch(noop);
    return p;
  }

  private async runDetection(frame: Frame, previous: Promise<unknown> | null): Promise<Detected> {
    const { detector, config, stages } = this.deps;
    this.counters.frames++;
    const now = this.now();
    if (now - frame.capturedMono > config.decision.max_frame_age_ms) {
      this.counters.stale++;
      return { frame, faces: null };
    }
    let image: Mat;
    let scale: JpegScale = 1;
    try {
      if (frame.jpeg) {
        // An MJPEG source: the detector (and the scene gate) read a reduced decode, which
        // libjpeg makes inside its inverse DCT for a fraction of the full decode's cost.
        scale = scaleFor(frame.width, frame.height, Math.max(detector.inputWidth, detector.inputHeight));
        image = await frame.jpeg.decode(scale);
      } else image = frame.mat;
    } catch (e) {
      this.badFrame(frame, e);
      return { frame, faces: null };
    }
    if (this.gate && !(await this.gateAdmits(this.gate, frame, image, previous)))
      return { frame, faces: null, gated: true };
    const t = this.now();
    const found = await detector.detect(image);
    const faces = scale === 1 ? found : found.map((f) => scaleDetection(f, scale));
    stages.record('detect', this.now() - t);
    let faceScale: JpegScale = 1;
    if (faces.length > 0) {
      this.gate?.faceSeen(frame.capturedMono);
      // The per-face step's image: by default the full decode, started now, off the event
      // loop, while the frames before this one finish (the liveness crop is then
      // bit-identical to a full-decode camera's); with decode 'reduced', the largest reduced
      // decode that still serves every face.
      if (frame.jpeg) {
        faceScale =
          this.deps.decode === 'reduced'
            ? reducedFaceScale(this.deps.liveness, frame.width, frame.height, faces, scale)
            : 1;
        if (faceScale !== 1) this.counters.reducedFaceFrames++;
        frame.jpeg.decode(faceScale).catch(noop);
      }
    }
    return { frame, faces, faceScale };
  }

  /** A frame that did not decode: counted and logged (at most once per BAD_FRAME_LOG_MS); the camera goes on. */
  private badFrame(frame: Frame, e: unknown): void {
    const err = asError(e);
    if (!(err instanceof KioskError) || err.code !== ErrorCodes.CAMERA_READ_FAILED) throw err;
    this.counters.badFrames++;
    const now = this.now();
    if (now - this.badFrameLoggedMono < BAD_FRAME_LOG_MS) return;
    this.badFrameLoggedMono = now;
    this.deps.log.warn(
      { camera: this.deps.cameraId, code: err.code, seq: frame.seq, bad_frames: this.counters.badFrames },
      `camera ${this.deps.cameraId}: frame ${frame.seq} skipped: ${err.message}`,
    );
  }

  /**
   * The scene gate's answer for a frame. Frames are detected ahead of the one being finished,
   * so before skipping one the previous frame's detection is awaited (a face it found keeps
   * full rate): a frame is never skipped after a frame whose detection found a face.
   */
  private async gateAdmits(
    gate: SceneGate,
    frame: Frame,
    image: Mat,
    previous: Promise<unknown> | null,
  ): Promise<boolean> {
    if (previous && !this.presenceOpen() && !gate.holding(frame.capturedMono)) await previous;
    return gate.admit(image, frame.capturedMono, this.presenceOpen()) !== 'still';
  }

  /**
   * Someone is, or may be, in front of this camera: a live track, an open session, a person
   * held, waiting out a cooldown or just gone (and maybe back), or a decision asked for.
   * The scene gate never skips a frame then.
   */
  presenceOpen(): boolean {
    const f = this.fusion;
    return (
      this.tracker.trackIds().length > 0 ||
      this.releaseRequested ||
      this.verifyWaiters.length > 0 ||
      [f.sessions, f.held, f.left, f.fixing, f.cooldownUntil].some((r) => Object.keys(r).length > 0)
    );
  }

  /** The scene gate's counts (null: no gate). */
  gateCounters() {
    return this.gate?.counters ?? null;
  }

  /** Second half, strictly in frame order: track, quality gates, alignment + liveness, fusion. */
  private async finishFrame({
    frame,
    faces: detected,
    gated,
    faceScale = 1,
  }: Detected): Promise<SessionDecision[]> {
    if (gated) return this.finishGated(frame);
    if (detected === null) return [];
    // The image the per-face step reads: the frame, or for a JPEG frame the decode started
    // with the detection (faceScale: 1 full, else reduced; the face's coordinates follow).
    let image: Mat | null = frame.jpeg ? null : frame.mat;
    if (frame.jpeg && detected.length > 0) {
      try {
        image = await frame.jpeg.decode(faceScale);
      } catch (e) {
        this.badFrame(frame, e);
        return [];
      }
    }
    const min = this.deps.decideFrom;
    const faces = min === undefined ? detected : detected.filter((f) => f.score >= min);
    const weak = detected.length - faces.length;
    this.counters.faces += faces.length;
    this.counters.weakFaces += weak;
    const { liveness, config, stages, cameraId } = this.deps;
    this.watchTilt(faces, frame.capturedMono);
    if (this.releaseRequested) {
      this.releaseRequested = false;
      this.fusion = releasePresence(this.fusion, cameraId);
    }
    const update = this.tracker.update(
      faces.map((f) => f.box),
      frame.capturedMono,
    );
    let chosen: { face: FaceDetection; trackId: number }[] = update.assignments.map((a) => ({
      face: faces[a.detectionIndex] as FaceDetection,
      trackId: a.trackId,
    }));
    if (config.decision.multiple_faces === 'largest' && chosen.length > 1) {
      chosen = [
        chosen.reduce((a, b) => (b.face.box[2] * b.face.box[3] > a.face.box[2] * a.face.box[3] ? b : a)),
      ];
    }
    const observations: FrameObservation[] = [];
    const detail: FrameResult['faces'] = [];
    let alignMs = 0;
    let inferMs = 0;
    for (const { face, trackId } of chosen) {
      // A person already decided (one decision per presence) is not classified again.
      const held = this.fusion.held[trackKey(cameraId, trackId)] !== undefined;
      const {
        quality,
        gate,
        liveness: r,
      } = await faceStep(image as Mat, face, liveness, {
        quality: config.quality,
        classify: !held || this.scoreHeldFaces,
        scale: faceScale,
      });
      let verdict: FrameObservation['verdict'] = null;
      let scores: Record<string, number> | null = null;
      if (r !== null) {
        this.counters.inferences++;
        alignMs += r.alignMs;
        inferMs += r.inferMs;
        verdict = r.verdict;
        scores = r.scores;
      }
      // Who this is (one decision per presence is per person, not per spot): about 0.3 ms a face.
      const tl = this.now();
      const look =
        config.decision.redecide === 'presence'
          ? faceLook(
              image as Mat,
              faceScale === 1 ? face.landmarks : scaleDetection(face, 1 / faceScale).landmarks,
            )
          : null;
      alignMs += this.now() - tl;
      const obs: FrameObservation = {
        trackId,
        box: face.box,
        capturedMono: frame.capturedMono,
        quality,
        qualityGate: gate,
        verdict,
        scores,
        facesInView: config.decision.multiple_faces === 'largest' ? 1 : faces.length,
        look,
      };
      observations.push(obs);
      detail.push({ ...obs, landmarks: face.landmarks, detectorScore: face.score, presence: 'new' });
    }
    if (observations.some((o) => o.verdict !== null)) {
      stages.record('align', alignMs);
      stages.record('infer', inferMs);
    }
    const t = this.now();
    const { state, decisions } = fuse(
      this.fusion,
      { nowMs: frame.capturedMono, cameraId, observations, lostTrackIds: update.lost },
      config.decision,
    );
    this.fusion = state;
    stages.record('decide', this.now() - t);
    for (const f of detail) if (state.held[trackKey(cameraId, f.trackId)]) f.presence = 'held';
    const guidanceInput = { cameraId, facesInView: faces.length, weakFaces: weak, observations, state };
    this.guidance = guidanceFor(guidanceInput, config);
    const presence = guidedPresence(guidanceInput);
    const say = this.guidanceLimiter.offer(
      this.guidance,
      frame.capturedMono,
      this.guidance === 'decided' ? `decided@${presence.heldSinceMono}` : this.guidance,
    );
    if (say) this.deps.sink.guidance?.(cameraId, say, faces.length, presence);
    this.counters.processed++;
    this.lastProgressMono = this.now();
    this.deps.onFrame?.({
      cameraId: this.deps.cameraId,
      frame,
      faces: detail,
      ignored: faces.length - chosen.length,
      decisions,
    });
    await this.emit(decisions);
    return decisions;
  }

  /**
   * A frame the scene gate let pass: nobody was in view at the last look and nothing changed,
   * so there is nothing to track or fuse (no presence is open). It still counts as progress
   * (watchdog) and is shown to frame observers without faces.
   */
  private finishGated(frame: Frame): SessionDecision[] {
    this.counters.gated++;
    this.counters.processed++;
    this.lastProgressMono = this.now();
    this.deps.onFrame?.({ cameraId: this.deps.cameraId, frame, faces: [], ignored: 0, decisions: [] });
    return [];
  }

  private async emit(decisions: SessionDecision[]): Promise<void> {
    for (const d of decisions) {
      this.counters.decisions++;
      const t = this.now();
      await this.deps.sink.decision(d);
      this.deps.stages.record('publish', this.now() - t);
      for (const resolve of this.verifyWaiters.splice(0)) resolve(d);
    }
  }

  /**
   * A camera mounted sideways shows faces whose head points sideways (landmarks): detectors
   * find fewer of them and liveness models call them spoof. Reported, never silently dropped:
   * a warning (at most once a minute) naming the rotate that would stand them upright.
   */
  private watchTilt(faces: FaceDetection[], nowMono: number): void {
    const first = faces[0];
    if (!first) return;
    this.tilt.push(uprightRotation(first.landmarks));
    if (this.tilt.length > TILT_WINDOW) this.tilt.shift();
    if (this.tilt.length < TILT_WINDOW || nowMono - this.tiltWarnedMono < TILT_WARN_INTERVAL_MS) return;
    const counts = new Map<number, number>();
    for (const r of this.tilt) counts.set(r, (counts.get(r) ?? 0) + 1);
    const [need, n] = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a));
    if (need === 0 || n * 2 <= TILT_WINDOW) return;
    this.tiltWarnedMono = nowMono;
    this.counters.tiltWarnings++;
    const { cameraId, log } = this.deps;
    log.warn(
      { camera: cameraId, rotate_needed: need, of: n, window: TILT_WINDOW },
      `camera ${cameraId}: faces in ${n} of the last ${TILT_WINDOW} face frames stand upright only after turning the image ${need} degrees clockwise; the camera looks mounted ${need === 180 ? 'upside down' : 'sideways'}: add ${need} to cameras[].rotate (see \`fghv-kiosk doctor\`)`,
    );
  }

  /**
   * Site drill: a new presentation starts in front of this camera, so the people it holds may
   * be decided again from the next frame on (as request/verify does, without waiting).
   */
  releaseHeld(): void {
    this.releaseRequested = true;
  }

  /**
   * request/verify: "decide the person in front of this camera now". The people this camera
   * holds (one decision per presence) may be decided again from the next frame on, by the
   * same rules and frames as any session: a release never decides anything by itself, so it
   * cannot produce an accept the pipeline would not make for a new arrival. Resolves with the
   * camera's next decision, or null after timeoutMs. Releases are rate-limited per camera
   * (VERIFY_MIN_INTERVAL_MS); a request in between waits for the same next decision.
   */
  requestDecision(timeoutMs: number): Promise<SessionDecision | null> {
    if (this.verifyWaiters.length >= MAX_VERIFY_WAITERS)
      return Promise.reject(
        new KioskError(
          ErrorCodes.COMMAND_BUSY,
          `camera ${this.deps.cameraId}: too many verify requests waiting`,
        ),
      );
    const now = this.now();
    if (now - this.lastReleaseMono >= VERIFY_MIN_INTERVAL_MS) {
      this.releaseRequested = true;
      this.lastReleaseMono = now;
    }
    return new Promise((resolve) => {
      const waiter = (d: SessionDecision | null) => {
        clearTimeout(timer);
        resolve(d);
      };
      const timer = setTimeout(() => {
        const i = this.verifyWaiters.indexOf(waiter);
        if (i >= 0) this.verifyWaiters.splice(i, 1);
        resolve(null);
      }, timeoutMs);
      this.verifyWaiters.push(waiter);
    });
  }

  /** End open sessions (face lost) when the source stops, so no person is left without an answer. */
  private async flush(): Promise<void> {
    const lost = Object.values(this.fusion.sessions).map((s) => s.trackId);
    if (!lost.length) return;
    const { state, decisions } = fuse(
      this.fusion,
      { nowMs: this.now(), cameraId: this.deps.cameraId, observations: [], lostTrackIds: lost },
      this.deps.config.decision,
    );
    this.fusion = state;
    await this.emit(decisions);
  }

  /** Switch the liveness model (model update); a frame in progress finishes with the model it began with. */
  setLiveness(model: LivenessModel): void {
    this.deps.liveness = model;
  }

  /** Resolves when the frame in progress (if any) has finished: after it, the old model is unused. */
  async frameDone(): Promise<void> {
    await this.inFrame?.catch(() => undefined);
  }

  /** Wait for the loop to finish (source ended or failed). */
  async done(): Promise<void> {
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.deps.camera.close();
    await this.running;
    if (this.state === 'running') this.setState('stopped');
  }
}
