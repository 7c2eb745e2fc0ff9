/**
 * Video files, V4L2 devices and GStreamer pipelines (Jetson CSI via nvarguscamerasrc, RTSP),
 * all through OpenCV's VideoCapture. Reads use readAsync (libuv threadpool) so decoding never
 * blocks the event loop; opening is synchronous in the binding, so it happens once, in open().
 */
import { existsSync } from 'node:fs';
import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { checkFile } from '../../core/file-rule.js';
import { FramePump, PumpedCamera } from './frame-pump.js';

type VideoCapture = InstanceType<typeof cv.VideoCapture>;

export interface OpenCvCaptureOptions {
  id: string;
  kind: 'file' | 'v4l2' | 'gstreamer';
  /** file: an absolute path; v4l2: /dev/videoN or an index; gstreamer: a pipeline ending in appsink. */
  source: string;
  /** file: start again at the end instead of ending the stream. */
  loop?: boolean;
  /** file: deliver at the file's frame rate (newest frame wins) or as fast as frames are taken. */
  realtime?: boolean;
  /** v4l2: requested capture size and rate; null keeps the device default. */
  width?: number | null;
  height?: number | null;
  fps?: number | null;
}

/** A file that delivers less than this share of the frames its header announces is truncated or corrupt. */
const MIN_COMPLETE_SHARE = 0.9;
/** A live source may miss a frame now and then; this many empty reads in a row is a failure. */
const MAX_EMPTY_LIVE_READS = 3;

export function openCvHasGStreamer(): boolean {
  return /GStreamer:\s+YES/.test(cv.getBuildInformation());
}

export class OpenCvCapture extends PumpedCamera {
  private cap: VideoCapture | null = null;
  private firstFrame: Mat | null = null;
  private framesInPass = 0;
  private announcedFrames = 0;

  constructor(private readonly opts: OpenCvCaptureOptions) {
    super({ id: opts.id, kind: opts.kind, source: opts.source, width: null, height: null, fps: null });
  }

  async open(): Promise<void> {
    if (this.cap) return;
    const cap = this.openCapture();
    try {
      if (this.opts.kind === 'v4l2') this.requestV4l2Format(cap);
      // Some sources open fine and never produce an image (a corrupt file, a wrong caps string).
      const first = await cap.readAsync().catch((e: unknown) => {
        throw this.openFailed(`reading the first frame failed: ${asError(e).message}`, e);
      });
      if (first.empty) throw this.openFailed('opened, but no frame could be read');
      this.currentInfo = {
        ...this.currentInfo,
        width: first.cols,
        height: first.rows,
        fps: positiveOrNull(cap.get(cv.CAP_PROP_FPS)),
      };
      this.announcedFrames =
        this.opts.kind === 'file' ? Math.max(0, cap.get(cv.CAP_PROP_FRAME_COUNT) || 0) : 0;
      // A file's first frame is part of its timeline; a live camera's is already stale.
      if (this.opts.kind === 'file') {
        this.firstFrame = first;
        this.framesInPass = 1;
      } else first.release();
    } catch (e) {
      cap.release();
      throw e;
    }
    this.cap = cap;
    const live = this.opts.kind !== 'file';
    const realtime = live || this.opts.realtime !== false;
    const fileInterval = 1000 / (this.currentInfo.fps ?? 15);
    this.pump = new FramePump(
      () => this.readImage(),
      realtime ? { push: true, intervalMs: live ? null : fileInterval } : { push: false },
      this.opts.source,
    );
    this.pump.start();
  }

  async close(): Promise<void> {
    await this.pump?.stop();
    this.firstFrame?.release();
    this.firstFrame = null;
    this.cap?.release();
    this.cap = null;
  }

  private openCapture(): VideoCapture {
    const { kind, source } = this.opts;
    if (kind === 'file' && !existsSync(source)) {
      throw new KioskError(ErrorCodes.CAMERA_NOT_FOUND, `video file not found: ${source}`, {
        details: { source },
      });
    }
    // The file rule (core/file-rule.ts): a video is a regular file (a FIFO or /dev/zero would
    // hang or feed the decoder forever), a V4L2 camera a character device.
    if (kind === 'file')
      checkFile(source, {
        what: 'video file',
        maxBytes: Number.MAX_SAFE_INTEGER,
        code: ErrorCodes.CAMERA_OPEN_FAILED,
      });
    if (kind === 'v4l2') {
      const device = /^\d+$/.test(source) ? `/dev/video${source}` : source;
      if (process.platform === 'linux' && !existsSync(device)) {
        throw new KioskError(ErrorCodes.CAMERA_NOT_FOUND, `V4L2 device not found: ${device}`, {
          details: { source },
        });
      }
      if (process.platform === 'linux') {
        checkFile(device, {
          what: 'V4L2 device',
          maxBytes: 0,
          code: ErrorCodes.CAMERA_OPEN_FAILED,
          allowCharDevice: true,
        });
      }
    }
    if (kind === 'gstreamer' && !openCvHasGStreamer()) {
      throw new KioskError(ErrorCodes.CAMERA_UNSUPPORTED, 'this OpenCV build has no GStreamer support', {
        details: { source },
      });
    }
    try {
      if (kind === 'v4l2')
        return new cv.VideoCapture(/^\d+$/.test(source) ? Number(source) : source, cv.CAP_V4L2);
      if (kind === 'gstreamer') return new cv.VideoCapture(source, cv.CAP_GSTREAMER);
      return new cv.VideoCapture(source);
    } catch (e) {
      const hint = kind === 'gstreamer' ? ' (the pipeline must end in appsink)' : '';
      throw this.openFailed(`cannot open${hint}: ${asError(e).message}`, e);
    }
  }

  /** MJPG first: USB cameras reach full frame rates at high resolutions only when compressed. */
  private requestV4l2Format(cap: VideoCapture): void {
    const { width, height, fps } = this.opts;
    if (!width && !height && !fps) return;
    cap.set(cv.CAP_PROP_FOURCC, cv.VideoWriter.fourcc('MJPG'));
    if (width) cap.set(cv.CAP_PROP_FRAME_WIDTH, width);
    if (height) cap.set(cv.CAP_PROP_FRAME_HEIGHT, height);
    if (fps) cap.set(cv.CAP_PROP_FPS, fps);
  }

  private async readImage(): Promise<Mat | null> {
    const cap = this.cap;
    if (!cap) return null;
    if (this.firstFrame) {
      const first = this.firstFrame;
      this.firstFrame = null;
      return first;
    }
    return this.opts.kind === 'file' ? this.readFileImage(cap) : this.readLiveImage(cap);
  }

  private async readFileImage(cap: VideoCapture): Promise<Mat | null> {
    let mat = await cap.readAsync();
    if (!mat.empty) {
      this.framesInPass++;
      return mat;
    }
    if (this.announcedFrames > 0 && this.framesInPass < this.announcedFrames * MIN_COMPLETE_SHARE) {
      throw new KioskError(
        ErrorCodes.CAMERA_READ_FAILED,
        `video ended after ${this.framesInPass} of ${this.announcedFrames} frames (truncated or corrupt): ${this.opts.source}`,
        { details: { source: this.opts.source, read: this.framesInPass, announced: this.announcedFrames } },
      );
    }
    if (!this.opts.loop) return null;
    if (!cap.set(cv.CAP_PROP_POS_FRAMES, 0)) cap.reset();
    mat = await cap.readAsync();
    if (mat.empty) {
      throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, `cannot restart the video: ${this.opts.source}`, {
        details: { source: this.opts.source },
      });
    }
    this.framesInPass = 1;
    return mat;
  }

  private async readLiveImage(cap: VideoCapture): Promise<Mat> {
    for (let attempt = 1; ; attempt++) {
      const mat = await cap.readAsync();
      if (!mat.empty) return mat;
      if (attempt >= MAX_EMPTY_LIVE_READS) {
        throw new KioskError(
          ErrorCodes.CAMERA_READ_FAILED,
          `${this.opts.kind} source delivered no frame (${attempt} empty reads): ${this.opts.source}`,
          { details: { source: this.opts.source } },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private openFailed(message: string, cause?: unknown): KioskError {
    return new KioskError(
      ErrorCodes.CAMERA_OPEN_FAILED,
      `camera ${this.opts.id} (${this.opts.kind}): ${message}`,
      {
        ...(cause === undefined ? {} : { cause: asError(cause) }),
        details: { source: this.opts.source },
      },
    );
  }
}

function positiveOrNull(value: number): number | null {
  return Number.isFinite(value) && value > 0 ? value : null;
}
