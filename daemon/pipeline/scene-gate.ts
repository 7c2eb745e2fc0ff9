/**
 * The scene gate: an empty, still scene is looked at (face detector) only a few times a second.
 *
 * Each frame the gate is asked about is shrunk to a small grey thumbnail (averaging the sensor
 * noise away) and compared with the thumbnail of the last frame the detector saw:
 * when more than `min_changed` of its pixels moved by more than `pixel_delta` grey levels,
 * something changed and the frame is detected. Otherwise the frame is detected only when the
 * last detection is 1/idle_fps old. Comparing with the last *detected* frame, not the previous
 * one, makes a slow change (a person walking in slowly) add up until it counts.
 *
 * Full rate, no thumbnail at all, while the caller says a presence is open (the pipeline: a
 * live track, an open session, a held or recently left person, a verify request) and for
 * `hold_ms` after the last change or the last face the detector returned (weak faces too).
 * The gate only ever decides whether the detector runs: it never drops a frame the pipeline
 * would decide on, so it cannot make an accept out of anything (a skipped frame is a frame on
 * which nobody was in view at the last look and nothing has changed since).
 */
import type { Config } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';

export type SceneGateConfig = Config['scene_gate'];

/** Why a frame was detected (admitted) or skipped. */
export type GateReason = 'presence' | 'hold' | 'first' | 'change' | 'tick' | 'still';

export interface GateCounters {
  /** Frames the detector saw, by reason. */
  admitted: Record<Exclude<GateReason, 'still'>, number>;
  /** Frames not detected: nobody in view and nothing changed since the last look. */
  skipped: number;
}

export class SceneGate {
  private reference: Mat | null = null;
  private lastDetectMono = Number.NEGATIVE_INFINITY;
  private lastChangeMono = Number.NEGATIVE_INFINITY;
  private lastFaceMono = Number.NEGATIVE_INFINITY;
  readonly counters: GateCounters = {
    admitted: { presence: 0, hold: 0, first: 0, change: 0, tick: 0 },
    skipped: 0,
  };

  constructor(private readonly cfg: SceneGateConfig) {}

  /** The detector returned at least one face (any score) on a frame captured at `mono`. */
  faceSeen(mono: number): void {
    if (mono > this.lastFaceMono) this.lastFaceMono = mono;
  }

  /** Full rate without looking: within hold_ms of the last change or the last face. */
  holding(mono: number): boolean {
    return mono - this.lastFaceMono < this.cfg.hold_ms || mono - this.lastChangeMono < this.cfg.hold_ms;
  }

  /**
   * Should the detector run on this frame (captured at `mono`)? `presenceOpen`: the pipeline
   * has someone in view or a decision under way. The caller keeps the Mat.
   */
  admit(mat: Mat, mono: number, presenceOpen: boolean): GateReason {
    const reason = this.decide(mat, mono, presenceOpen);
    if (reason === 'still') this.counters.skipped++;
    else {
      this.counters.admitted[reason]++;
      this.lastDetectMono = mono;
    }
    return reason;
  }

  private decide(mat: Mat, mono: number, presenceOpen: boolean): GateReason {
    if (presenceOpen || this.holding(mono)) {
      // No thumbnail while busy: the first still frame afterwards starts a new reference.
      this.dropReference();
      return presenceOpen ? 'presence' : 'hold';
    }
    const thumb = thumbnail(mat, this.cfg.thumb_width);
    const ref = this.reference;
    if (ref === null || ref.cols !== thumb.cols || ref.rows !== thumb.rows) {
      this.setReference(thumb);
      return 'first';
    }
    if (changedFraction(ref, thumb, this.cfg.pixel_delta) > this.cfg.min_changed) {
      this.lastChangeMono = mono;
      this.setReference(thumb);
      return 'change';
    }
    if (mono - this.lastDetectMono >= 1000 / this.cfg.idle_fps) {
      this.setReference(thumb);
      return 'tick';
    }
    thumb.release();
    return 'still';
  }

  private setReference(thumb: Mat): void {
    this.reference?.release();
    this.reference = thumb;
  }

  private dropReference(): void {
    this.reference?.release();
    this.reference = null;
  }

  /** Frees the reference thumbnail (the pipeline ends). */
  close(): void {
    this.dropReference();
  }
}

/**
 * A grey thumbnail `width` pixels wide (aspect kept). Bilinear to twice that size (each output
 * pixel reads 2x2 source pixels), then a 2x2 average: every thumbnail pixel averages 16 source
 * pixels spread over its block, enough to flatten sensor noise, at 0.04 ms a frame instead of
 * 0.19 ms (640x480) or 1.27 ms (1920x1080) for INTER_AREA over every pixel (measured here).
 */
export function thumbnail(bgr: Mat, width: number): Mat {
  const w = Math.max(1, Math.min(width, bgr.cols));
  const h = Math.max(1, Math.round((bgr.rows * w) / bgr.cols));
  let small: Mat;
  if (bgr.cols >= 4 * w && bgr.rows >= 4 * h) {
    const mid = bgr.resize(2 * h, 2 * w, 0, 0, cv.INTER_LINEAR);
    small = mid.resize(h, w, 0, 0, cv.INTER_AREA);
    mid.release();
  } else small = bgr.resize(h, w, 0, 0, cv.INTER_AREA);
  if (small.channels === 1) return small;
  const grey = small.cvtColor(cv.COLOR_BGR2GRAY);
  small.release();
  return grey;
}

/** Fraction of pixels of two same-size grey thumbnails that differ by more than `delta` levels. */
export function changedFraction(a: Mat, b: Mat, delta: number): number {
  const diff = a.absdiff(b);
  const over = diff.threshold(delta, 255, cv.THRESH_BINARY);
  const n = over.countNonZero();
  diff.release();
  over.release();
  return n / (a.rows * a.cols);
}
