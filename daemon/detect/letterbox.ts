/**
 * Letterboxing: fit an image into a detector's fixed input keeping its aspect ratio, pad the rest
 * with a constant, and map detections back to the original pixels. The maths is pure (tested on
 * fixed numbers); `letterboxTensor` is the OpenCV edge (colour conversion + resize), writing the
 * resized pixels straight into the padded tensor (a ROI copy without a padded Mat in between).
 */

import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import type { FaceDetection, Landmarks5, Point } from './types.js';

export interface Letterbox {
  srcW: number;
  srcH: number;
  dstW: number;
  dstH: number;
  /** Size of the resized image inside the network input. */
  innerW: number;
  innerH: number;
  /** Offset of the resized image inside the network input (the padding is split evenly). */
  padX: number;
  padY: number;
}

export function computeLetterbox(srcW: number, srcH: number, dstW: number, dstH: number): Letterbox {
  if (!(srcW > 0 && srcH > 0 && dstW > 0 && dstH > 0)) {
    throw new KioskError(
      ErrorCodes.INTERNAL,
      `letterbox needs positive sizes, got ${srcW}x${srcH} -> ${dstW}x${dstH}`,
    );
  }
  const scale = Math.min(dstW / srcW, dstH / srcH);
  const innerW = Math.min(dstW, Math.max(1, Math.round(srcW * scale)));
  const innerH = Math.min(dstH, Math.max(1, Math.round(srcH * scale)));
  return {
    srcW,
    srcH,
    dstW,
    dstH,
    innerW,
    innerH,
    padX: Math.floor((dstW - innerW) / 2),
    padY: Math.floor((dstH - innerH) / 2),
  };
}

/** Network-input pixel -> original pixel. Per-axis scales use the rounded inner size, which is what resize produced. */
export function unletterboxPoint(lb: Letterbox, p: Point): Point {
  return [((p[0] - lb.padX) * lb.srcW) / lb.innerW, ((p[1] - lb.padY) * lb.srcH) / lb.innerH];
}

/** Original pixel -> network-input pixel (the inverse, used by tests and synthetic data). */
export function letterboxPoint(lb: Letterbox, p: Point): Point {
  return [(p[0] * lb.innerW) / lb.srcW + lb.padX, (p[1] * lb.innerH) / lb.srcH + lb.padY];
}

/** Map a detection in network-input pixels back to original-image pixels. */
export function unletterbox(lb: Letterbox, d: FaceDetection): FaceDetection {
  const [x, y, w, h] = d.box;
  const [x0, y0] = unletterboxPoint(lb, [x, y]);
  const [x1, y1] = unletterboxPoint(lb, [x + w, y + h]);
  const landmarks = d.landmarks.map((p) => unletterboxPoint(lb, p)) as Landmarks5;
  return { box: [x0, y0, x1 - x0, y1 - y0], landmarks, score: d.score };
}

/** Detectors take BGR: convert grey (1 channel) and BGRA (4 channels) frames first. */
export function toBgr(image: Mat): Mat {
  if (image.depth !== cv.CV_8U) {
    throw new KioskError(
      ErrorCodes.IMAGE_UNREADABLE,
      `detector needs an 8-bit image, got depth ${image.depth}`,
    );
  }
  try {
    if (image.channels === 3) return image;
    if (image.channels === 1) return image.cvtColor(cv.COLOR_GRAY2BGR);
    if (image.channels === 4) return image.cvtColor(cv.COLOR_BGRA2BGR);
  } catch (e) {
    throw new KioskError(ErrorCodes.IMAGE_UNREADABLE, 'colour conversion failed', { cause: asError(e) });
  }
  throw new KioskError(ErrorCodes.IMAGE_UNREADABLE, `detector cannot use a ${image.channels}-channel image`);
}

export type TensorLayout =
  /** [1,3,H,W], BGR, 0..255 (YuNet). */
  | { kind: 'nchw-bgr' }
  /** [1,H,W,3], RGB, value = pixel * scale + offset (BlazeFace). */
  | { kind: 'nhwc-rgb'; scale: number; offset: number };

/**
 * Fill a padded network tensor from a packed BGR byte buffer of the inner (already resized) image.
 * Pure, so tests can check the layout on a few pixels without OpenCV. Padding gets `pad`
 * (in tensor units, i.e. after scaling).
 */
export function fillTensor(bgr: Uint8Array, lb: Letterbox, layout: TensorLayout, pad: number): Float32Array {
  const { dstW, dstH, innerW, innerH, padX, padY } = lb;
  const plane = dstW * dstH;
  const out = new Float32Array(plane * 3);
  if (pad !== 0) out.fill(pad);
  for (let y = 0; y < innerH; y++) {
    let src = y * innerW * 3;
    let dst = (y + padY) * dstW + padX;
    if (layout.kind === 'nchw-bgr') {
      for (let x = 0; x < innerW; x++, dst++, src += 3) {
        out[dst] = bgr[src] as number;
        out[dst + plane] = bgr[src + 1] as number;
        out[dst + 2 * plane] = bgr[src + 2] as number;
      }
    } else {
      const { scale, offset } = layout;
      for (let x = 0; x < innerW; x++, dst++, src += 3) {
        const o = dst * 3;
        out[o] = (bgr[src + 2] as number) * scale + offset;
        out[o + 1] = (bgr[src + 1] as number) * scale + offset;
        out[o + 2] = (bgr[src] as number) * scale + offset;
      }
    }
  }
  return out;
}

/** INTER_AREA when shrinking avoids aliasing that costs small faces their features. */
function interpolation(lb: Letterbox, srcCols: number): number {
  return lb.innerW < srcCols ? cv.INTER_AREA : cv.INTER_LINEAR;
}

/**
 * The planar BGR tensor (YuNet) without a loop per pixel: OpenCV splits the channels and
 * TypedArray#set converts each row's bytes to floats natively. Same values as fillTensor
 * (bytes converted exactly), about half its CPU time here (bench/performance.md, change 10).
 */
function planarTensor(inner: Mat, lb: Letterbox, pad: number): Float32Array {
  const { dstW, dstH, innerW, innerH, padX, padY } = lb;
  const plane = dstW * dstH;
  const out = new Float32Array(plane * 3);
  if (pad !== 0) out.fill(pad);
  const channels = inner.splitChannels();
  try {
    for (let c = 0; c < 3; c++) {
      const data = (channels[c] as Mat).getData();
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const base = c * plane + padY * dstW + padX;
      if (innerW === dstW) out.set(bytes.subarray(0, innerW * innerH), base);
      else
        for (let y = 0; y < innerH; y++)
          out.set(bytes.subarray(y * innerW, (y + 1) * innerW), base + y * dstW);
    }
  } finally {
    for (const m of channels) m.release();
  }
  return out;
}

function tensorFrom(inner: Mat, lb: Letterbox, layout: TensorLayout, pad: number): Float32Array {
  if (layout.kind === 'nchw-bgr') return planarTensor(inner, lb, pad);
  // BlazeFace's interleaved layout: a channel swap plus a byte lookup table or an in-place
  // multiply-add measured no faster than this loop (its resize dominates), so it stays.
  const data = inner.getData();
  return fillTensor(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), lb, layout, pad);
}

/**
 * Frames up to this many pixels are resized on the event loop: at 640x480 the resize takes
 * about 0.4 ms, and sending it to libuv's pool cost more CPU than the resize itself (promise,
 * thread hand-off: 1.7 vs 0.9 ms of CPU per frame, bench/performance.md, change 10). Larger
 * frames (1080p: 2.5 to 6 ms) still go to the pool, so the event loop stays free.
 */
export const SYNC_RESIZE_MAX_PIXELS = 1280 * 720;

function resizeFailed(e: unknown): KioskError {
  return new KioskError(ErrorCodes.IMAGE_UNREADABLE, 'resize for the detector failed', { cause: asError(e) });
}

/**
 * OpenCV part: any 8-bit grey/BGR/BGRA Mat -> letterboxed network tensor plus the mapping back.
 * The resize of a large frame runs on libuv's thread pool (SYNC_RESIZE_MAX_PIXELS).
 */
export async function letterboxTensor(
  image: Mat,
  dstW: number,
  dstH: number,
  layout: TensorLayout,
  pad: number,
): Promise<{ tensor: Float32Array; lb: Letterbox }> {
  const bgr = toBgr(image);
  const lb = computeLetterbox(bgr.cols, bgr.rows, dstW, dstH);
  let inner: Mat;
  try {
    // copy() when no resize is needed: getData() refuses a ROI view (a frame cut with getRegion).
    const same = lb.innerW === bgr.cols && lb.innerH === bgr.rows;
    if (bgr.cols * bgr.rows <= SYNC_RESIZE_MAX_PIXELS)
      inner = same ? bgr.copy() : bgr.resize(lb.innerH, lb.innerW, 0, 0, interpolation(lb, bgr.cols));
    else
      inner = same
        ? await bgr.copyAsync()
        : await bgr.resizeAsync(lb.innerH, lb.innerW, 0, 0, interpolation(lb, bgr.cols));
  } catch (e) {
    throw resizeFailed(e);
  } finally {
    if (bgr !== image) bgr.release();
  }
  try {
    return { tensor: tensorFrom(inner, lb, layout, pad), lb };
  } finally {
    // Mat memory is invisible to V8's GC (core/cv.ts): free it now.
    inner.release();
  }
}
