import type { CameraKind } from '../../config/schema.js';
import type { Mat } from '../../core/cv.js';

/** One captured image. `mat` is 8-bit BGR (CV_8UC3) whatever the source delivered. */
export interface Frame {
  readonly mat: Mat;
  readonly width: number;
  readonly height: number;
  /** Wall-clock capture time, ms since the epoch (for payloads and logs). */
  readonly capturedAt: number;
  /** Monotonic capture time, ms (performance.now()), for ages and latencies. */
  readonly capturedMono: number;
  /** Per-source frame counter, starting at 1; gaps mean frames were dropped. */
  readonly seq: number;
  /**
   * Present when the source delivered the frame as a JPEG (an MJPEG camera through ffmpeg,
   * `cameras[].decode: auto`): its decodes at reduced scales, and `mat` is then decoded on
   * first use. Free such a frame with releaseFrame (jpeg.ts), which decodes nothing.
   */
  readonly jpeg?: JpegSource;
}

/** libjpeg's DCT scale factors OpenCV exposes (decode at 1/scale). */
export type JpegScale = 1 | 2 | 4 | 8;

/** A camera's JPEG image and its decodes (drivers/camera/jpeg.ts: JpegImage). */
export interface JpegSource {
  readonly bytes: Buffer;
  readonly width: number;
  readonly height: number;
  /** The image at 1/scale, decoded once; rejects with KIOSK_E_CAMERA_READ_FAILED. */
  decode(scale: JpegScale): Promise<Mat>;
  /** The full-resolution image now (decoded here if no decode finished yet). */
  full(): Mat;
  readonly fullDecoded: boolean;
  /** Free every decode, now or when an in-flight one finishes. */
  release(): void;
}

export type { CameraKind };

export interface CameraInfo {
  readonly id: string;
  readonly kind: CameraKind;
  /** What the user configured (path, device, pipeline), for logs and `info`. */
  readonly source: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly fps: number | null;
}

export interface CaptureStats {
  /** Frames read from the source. */
  captured: number;
  /** Frames handed to the pipeline. */
  delivered: number;
  /** Frames overwritten by a newer one before the pipeline took them (newest frame wins). */
  dropped: number;
}

/**
 * A camera behind a small interface. `open()` fails with a KioskError
 * (KIOSK_E_CAMERA_NOT_FOUND / KIOSK_E_CAMERA_OPEN_FAILED); `frames()` yields frames until the
 * source ends (file played once) or `close()` is called; a read failure mid-stream throws a
 * KioskError (KIOSK_E_CAMERA_READ_FAILED). Frames arriving while the consumer is busy are
 * dropped and counted: nothing is ever queued without bound.
 */
export interface CameraDriver {
  readonly info: CameraInfo;
  open(): Promise<void>;
  frames(): AsyncIterable<Frame>;
  stats(): CaptureStats;
  close(): Promise<void>;
}
