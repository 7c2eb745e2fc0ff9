/**
 * One still image as a one-frame camera, for `classify`: the same frame path (BGR, stamps,
 * stats) as live capture, so classifying a photo exercises the code a camera frame goes through.
 */
import { performance } from 'node:perf_hooks';
import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { readCheckedFileAsync } from '../../core/file-rule.js';
import { toBgr8 } from './bgr.js';
import { imageHeaderProblem, MAX_IMAGE_FILE_BYTES } from './image-header.js';
import type { CameraDriver, CameraInfo, CaptureStats, Frame } from './types.js';

/**
 * Decode an image file to 8-bit BGR; KIOSK_E_IMAGE_UNREADABLE when missing, not a regular file
 * of at most MAX_IMAGE_FILE_BYTES (core/file-rule.ts), not a PNG or JPEG, or declaring more
 * pixels than MAX_IMAGE_PIXELS (image-header.ts: checked before decoding).
 * Pixels are taken as stored, like a camera frame: an EXIF orientation tag is ignored unless
 * asked for (the shared sample photos carry a stale tag on already-upright pixels; applying it
 * turns their faces sideways).
 */
export async function readImageBgr(
  path: string,
  opts: { applyExifOrientation?: boolean } = {},
): Promise<Mat> {
  const bytes = await readCheckedFileAsync(path, {
    what: 'image',
    maxBytes: MAX_IMAGE_FILE_BYTES,
    code: ErrorCodes.IMAGE_UNREADABLE,
  });
  const problem = imageHeaderProblem(bytes);
  if (problem) {
    throw new KioskError(ErrorCodes.IMAGE_UNREADABLE, `image ${path} ${problem}`, {
      details: { path, bytes: bytes.length },
    });
  }
  let mat: Mat | undefined;
  try {
    // IMREAD_COLOR: grey, BGRA and 16-bit files all decode to 8-bit BGR.
    const flags = cv.IMREAD_COLOR | (opts.applyExifOrientation ? 0 : cv.IMREAD_IGNORE_ORIENTATION);
    mat = await cv.imdecodeAsync(bytes, flags);
  } catch (e) {
    throw new KioskError(ErrorCodes.IMAGE_UNREADABLE, `not a decodable image: ${path}`, {
      cause: asError(e),
      details: { path, bytes: bytes.length },
    });
  }
  if (!mat || mat.empty) {
    throw new KioskError(ErrorCodes.IMAGE_UNREADABLE, `not a decodable image: ${path}`, {
      details: { path, bytes: bytes.length },
    });
  }
  return toBgr8(mat);
}

export class StillImageSource implements CameraDriver {
  private image: Mat | null = null;
  private delivered = 0;
  private currentInfo: CameraInfo;

  constructor(
    private readonly path: string,
    id = 'image',
  ) {
    this.currentInfo = { id, kind: 'image', source: path, width: null, height: null, fps: null };
  }

  get info(): CameraInfo {
    return this.currentInfo;
  }

  async open(): Promise<void> {
    if (this.image) return;
    this.image = await readImageBgr(this.path);
    this.currentInfo = { ...this.currentInfo, width: this.image.cols, height: this.image.rows };
  }

  async *frames(): AsyncGenerator<Frame> {
    const mat = this.image;
    if (!mat) throw new KioskError(ErrorCodes.INTERNAL, `image source ${this.path}: frames() before open()`);
    if (this.delivered > 0) return; // one image, one frame
    this.delivered = 1;
    yield {
      mat,
      width: mat.cols,
      height: mat.rows,
      capturedAt: Date.now(),
      capturedMono: performance.now(),
      seq: 1,
    };
  }

  stats(): CaptureStats {
    return { captured: this.image ? 1 : 0, delivered: this.delivered, dropped: 0 };
  }

  async close(): Promise<void> {
    this.image = null;
  }
}
