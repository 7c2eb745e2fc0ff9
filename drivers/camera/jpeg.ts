/**
 * Decoding a camera's JPEG frame (MJPEG: what most USB cameras deliver) at the size a consumer
 * needs. libjpeg scales by 1/2, 1/4 or 1/8 inside the inverse DCT (OpenCV's IMREAD_REDUCED_*
 * flags), so a reduced decode skips most of the work instead of decoding everything and
 * resizing: at 1920x1080, 1.35 ms for 480x270 against 3.5 ms for the full frame (measured
 * here, bench/performance.md "Scaled MJPEG decode").
 */
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';

/** libjpeg's DCT scale factors OpenCV exposes. */
export type JpegScale = 1 | 2 | 4 | 8;

const COLOR_FLAG: Record<JpegScale, number> = {
  1: cv.IMREAD_COLOR,
  2: cv.IMREAD_REDUCED_COLOR_2,
  4: cv.IMREAD_REDUCED_COLOR_4,
  8: cv.IMREAD_REDUCED_COLOR_8,
};

/**
 * The largest scale whose decoded image still covers `need` x `need` pixels, the detector's
 * input, on its longer side (the detector letterboxes the longer side to its input): a
 * reduced decode never makes the detector upscale.
 */
export function scaleFor(width: number, height: number, need: number): JpegScale {
  const longer = Math.max(width, height);
  for (const s of [8, 4, 2] as const) if (Math.ceil(longer / s) >= need) return s;
  return 1;
}

/** Decode a JPEG to 8-bit BGR at 1/scale of its size (rounded up, as libjpeg does). */
export function decodeJpeg(jpeg: Buffer, scale: JpegScale = 1): Mat {
  // Checked here: OpenCV's imdecode aborts the whole process on an empty buffer (an uncaught
  // C++ assertion, not a JavaScript exception).
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8)
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `not a JPEG frame (${jpeg.length} bytes, no start-of-image marker)`,
    );
  let mat: Mat;
  try {
    mat = cv.imdecode(jpeg, COLOR_FLAG[scale]);
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `not a decodable JPEG frame: ${(e as Error).message}`,
    );
  }
  if (mat.empty)
    throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, `not a decodable JPEG frame (${jpeg.length} bytes)`);
  return mat;
}
