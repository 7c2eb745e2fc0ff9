/**
 * Every driver delivers 8-bit BGR (CV_8UC3), whatever the source produced: GStreamer GRAY8 or
 * GRAY16 caps, BGRA pipelines, 16-bit PNGs. Downstream code can then assume one layout.
 */

import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';

const EIGHT_BIT_TYPE: Record<number, number> = { 1: cv.CV_8UC1, 3: cv.CV_8UC3, 4: cv.CV_8UC4 };

export function toBgr8(mat: Mat): Mat {
  if (mat.type === cv.CV_8UC3) return mat;
  const eightBitType = EIGHT_BIT_TYPE[mat.channels];
  if (eightBitType === undefined) {
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `cannot convert a ${mat.channels}-channel frame to BGR`,
      {
        details: { channels: mat.channels, type: mat.type },
      },
    );
  }
  let eight = mat;
  if (mat.depth === cv.CV_16U) eight = mat.convertTo(eightBitType, 1 / 256);
  else if (mat.depth === cv.CV_32F || mat.depth === cv.CV_64F) eight = mat.convertTo(eightBitType, 255);
  else if (mat.depth !== cv.CV_8U) eight = mat.convertTo(eightBitType);
  if (mat.channels === 1) return eight.cvtColor(cv.COLOR_GRAY2BGR);
  if (mat.channels === 4) return eight.cvtColor(cv.COLOR_BGRA2BGR);
  return eight;
}
