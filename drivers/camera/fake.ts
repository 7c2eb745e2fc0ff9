/**
 * A scriptable camera for tests of the rest of the daemon: given images (or a function that
 * makes them), a pace and failures to simulate. It goes through the same FramePump as the
 * real drivers, so newest-frame-wins, stamps, BGR conversion and stats behave identically.
 */
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { FramePump, PumpedCamera } from './frame-pump.js';

export interface FakeCameraOptions {
  id?: string;
  /** Images to deliver in order (cloned, so the caller keeps its own), or a maker called per frame. */
  images?: readonly Mat[] | ((seq: number) => Mat);
  /** Size of the default synthetic frames (a flat colour that changes with each frame). */
  width?: number;
  height?: number;
  /** Frames before the stream ends normally; null: endless. Default: the array's length, else endless. */
  count?: number | null;
  /** Push mode pace (a live camera: newest frame wins); null: pull mode, one frame per request. */
  intervalMs?: number | null;
  /** open() throws this (e.g. to test a missing camera). */
  openError?: KioskError;
  /** Reading frame number failAfter + 1 throws KIOSK_E_CAMERA_READ_FAILED. */
  failAfter?: number;
}

export class FakeCamera extends PumpedCamera {
  private produced = 0;
  private readonly count: number | null;

  constructor(private readonly opts: FakeCameraOptions = {}) {
    const interval = opts.intervalMs === undefined ? 1000 / 15 : opts.intervalMs;
    super({
      id: opts.id ?? 'fake',
      kind: 'fake',
      source: 'fake',
      width: null,
      height: null,
      fps: interval ? 1000 / interval : null,
    });
    const images = opts.images;
    this.count = opts.count !== undefined ? opts.count : Array.isArray(images) ? images.length : null;
  }

  async open(): Promise<void> {
    if (this.opts.openError) throw this.opts.openError;
    if (this.pump) return;
    const interval = this.opts.intervalMs === undefined ? 1000 / 15 : this.opts.intervalMs;
    const mode =
      interval === null ? ({ push: false } as const) : ({ push: true, intervalMs: interval } as const);
    this.pump = new FramePump(() => this.next(), mode, 'fake');
    this.pump.start();
  }

  async close(): Promise<void> {
    await this.pump?.stop();
  }

  private async next(): Promise<Mat | null> {
    if (this.count !== null && this.produced >= this.count) return null;
    if (this.opts.failAfter !== undefined && this.produced >= this.opts.failAfter) {
      throw new KioskError(
        ErrorCodes.CAMERA_READ_FAILED,
        `fake camera: simulated read failure after ${this.produced} frames`,
      );
    }
    this.produced++;
    const mat = this.makeImage(this.produced);
    if (this.currentInfo.width === null)
      this.currentInfo = { ...this.currentInfo, width: mat.cols, height: mat.rows };
    return mat;
  }

  private makeImage(seq: number): Mat {
    const images = this.opts.images;
    if (typeof images === 'function') return images(seq);
    if (images?.length) return (images[(seq - 1) % images.length] as Mat).copy();
    const shade = (seq * 37) % 256;
    // setTo, not the fill constructor: that one loops per pixel in JS (274 ms for 640x480).
    const mat = new cv.Mat(this.opts.height ?? 480, this.opts.width ?? 640, cv.CV_8UC3);
    return mat.setTo(new cv.Vec3(shade, 128, 255 - shade));
  }
}
