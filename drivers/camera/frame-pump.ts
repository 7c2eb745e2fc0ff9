/**
 * Turns a "read one raw image" function into the CameraDriver frame stream. Two modes:
 * - push: a capture loop reads continuously (live cameras, which block until the next frame;
 *   or paced at `intervalMs`, for real-time files and fakes) into a LatestFrameSlot, so the
 *   newest frame wins and frames the pipeline is too busy for are dropped and counted;
 * - pull: files played as fast as the pipeline goes; nothing is dropped, and the next image
 *   is read while the current one is processed (one frame ahead).
 * Stamping, BGR conversion, sequence numbers and stats live here, identical for every driver.
 */
import { performance } from 'node:perf_hooks';
import { abortableSleep } from '../../core/async.js';
import type { Mat } from '../../core/cv.js';
import { asError, ErrorCodes, isKioskError, KioskError } from '../../core/errors.js';
import { toBgr8 } from './bgr.js';
import { JpegFrame, JpegImage, releaseFrame } from './jpeg.js';
import { LatestFrameSlot } from './latest-frame.js';
import type { CameraDriver, CameraInfo, CaptureStats, Frame } from './types.js';

/**
 * Reads the next image; `null` means the source ended normally (a file played once). A
 * JpegImage is handed on undecoded (a JpegFrame): the pipeline decodes it at the scale it needs.
 */
export type ReadImage = () => Promise<Mat | JpegImage | null>;

export type PumpMode = { push: false } | { push: true; intervalMs: number | null };

export class FramePump {
  private readonly slot = new LatestFrameSlot<Frame>(releaseFrame);
  private seq = 0;
  private pulled = 0;
  private producer: Promise<void> | null = null;
  private inflightPull: Promise<unknown> | null = null;
  private stopping = false;
  private cancelSleep: (() => void) | null = null;
  private sourceEnded = false;

  constructor(
    private readonly read: ReadImage,
    private readonly mode: PumpMode,
    private readonly source: string,
  ) {}

  /** Push mode: start the capture loop (idempotent). Called by open() so a camera is warm. */
  start(): void {
    if (this.mode.push && !this.producer && !this.stopping)
      this.producer = this.produce(this.mode.intervalMs);
  }

  async *frames(): AsyncGenerator<Frame> {
    if (this.mode.push) {
      this.start();
      for (;;) {
        const frame = await this.slot.take();
        if (!frame) return;
        yield frame;
      }
    }
    // Pull: the next image is read (decoded on libuv's pool) while the consumer works on this
    // one, so decoding overlaps processing instead of adding to it. Still lossless and in order:
    // at most one read is in flight.
    let next: Promise<Frame | null> | null = null;
    try {
      while (!this.stopping) {
        const pull = next ?? this.readFrame();
        this.inflightPull = pull;
        const frame = await pull;
        next = null;
        if (!frame) return;
        if (!this.stopping) {
          next = this.readFrame();
          next.catch(noop); // a failed read is rethrown when awaited above, not reported as unhandled
          this.inflightPull = next;
        }
        this.pulled++;
        yield frame;
      }
    } finally {
      // Stopped or abandoned with a prefetched frame: free it once its read completes.
      if (next !== null) void next.then((f) => f && releaseFrame(f), noop);
    }
  }

  stats(): CaptureStats {
    if (!this.mode.push) return { captured: this.seq, delivered: this.pulled, dropped: 0 };
    return { captured: this.slot.offered, delivered: this.slot.taken, dropped: this.slot.dropped };
  }

  /** True once the source reported its end (a file played once). */
  get ended(): boolean {
    return this.sourceEnded;
  }

  /**
   * Stop capturing and end the stream. Waits up to `graceMs` for a read in flight (a stalled
   * network stream must not hang shutdown); the caller then releases the native capture, which
   * is safe because an in-flight native read holds its own reference.
   */
  async stop(graceMs = 1000): Promise<void> {
    this.stopping = true;
    this.cancelSleep?.();
    this.slot.close();
    this.slot.discard();
    const busy = this.producer ?? this.inflightPull;
    if (!busy) return;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([busy.then(noop, noop), grace]);
    clearTimeout(timer);
  }

  private async readFrame(): Promise<Frame | null> {
    let mat: Mat | JpegImage | null;
    try {
      mat = await this.read();
    } catch (e) {
      if (isKioskError(e)) throw e;
      throw new KioskError(
        ErrorCodes.CAMERA_READ_FAILED,
        `reading ${this.source} failed: ${asError(e).message}`,
        {
          cause: asError(e),
          details: { source: this.source },
        },
      );
    }
    const capturedAt = Date.now();
    const capturedMono = performance.now();
    if (!mat) {
      this.sourceEnded = true;
      return null;
    }
    if (mat instanceof JpegImage) return new JpegFrame(mat, capturedAt, capturedMono, ++this.seq);
    const bgr = toBgr8(mat);
    this.seq++;
    return { mat: bgr, width: bgr.cols, height: bgr.rows, capturedAt, capturedMono, seq: this.seq };
  }

  private async produce(intervalMs: number | null): Promise<void> {
    try {
      let due = performance.now();
      while (!this.stopping) {
        const frame = await this.readFrame();
        if (!frame) break;
        this.slot.offer(frame); // after stop() the slot is closed and frees the frame
        if (intervalMs === null) continue;
        due += intervalMs;
        const wait = due - performance.now();
        // Far behind (a slow decode or a paused process): restart the schedule, never burst.
        if (wait < -intervalMs) due = performance.now();
        else if (wait > 0) await this.sleep(wait);
      }
      this.slot.close();
    } catch (e) {
      this.slot.close(asError(e));
    }
  }

  private async sleep(ms: number): Promise<void> {
    const ac = new AbortController();
    this.cancelSleep = () => ac.abort();
    await abortableSleep(ms, ac.signal);
    this.cancelSleep = null;
  }
}

function noop(): void {}

/**
 * What every FramePump-based driver shares: its info, the frame stream, stats and `ended`.
 * A driver sets `pump` in open() (and clears or stops it in close()) and updates `currentInfo`
 * once it knows the frame size.
 */
export abstract class PumpedCamera implements CameraDriver {
  protected pump: FramePump | null = null;

  constructor(protected currentInfo: CameraInfo) {}

  get info(): CameraInfo {
    return this.currentInfo;
  }

  /** True once a source that ends (a file played once) has been read to its end. */
  get ended(): boolean {
    return this.pump?.ended ?? false;
  }

  frames(): AsyncIterable<Frame> {
    if (!this.pump)
      throw new KioskError(ErrorCodes.INTERNAL, `camera ${this.currentInfo.id}: frames() before open()`);
    return this.pump.frames();
  }

  stats(): CaptureStats {
    return this.pump?.stats() ?? { captured: 0, delivered: 0, dropped: 0 };
  }

  abstract open(): Promise<void>;
  abstract close(): Promise<void>;

  /**
   * For snapshot sources (fswebcam, node-webcam): one snapshot learns the size, then the
   * pump takes a snapshot every 1/fps seconds (2 fps unless configured).
   */
  protected async startSnapshots(
    snapshot: () => Promise<Mat>,
    fps: number | null | undefined,
  ): Promise<void> {
    const first = await snapshot();
    const rate = fps ?? 2;
    this.currentInfo = { ...this.currentInfo, width: first.cols, height: first.rows, fps: rate };
    first.release();
    this.pump = new FramePump(snapshot, { push: true, intervalMs: 1000 / rate }, this.currentInfo.source);
    this.pump.start();
  }
}
