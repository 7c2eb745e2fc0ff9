/**
 * Camera orientation: a camera mounted sideways or upside down (portrait kiosks, gates), or a
 * mirrored one, is corrected once per frame, right after capture, so detection, alignment,
 * boxes, landmarks, the status page and decisions all see the upright image. Detectors and
 * liveness models are trained on upright faces: a face turned 90 degrees is missed or called
 * spoof (issue 15: 12 rejects of 18 on a sideways live video, 13 accepts of 13 upright).
 *
 * `rotate`: degrees clockwise that turn the captured image upright; `flip` is applied after
 * the rotation (`horizontal` mirrors left-right, `vertical` top-bottom). One cv.rotate and at
 * most one cv.flip per frame; the captured Mat is released as soon as its corrected copy exists.
 */
import { cv, type Mat } from '../../core/cv.js';
import { releaseFrame } from './jpeg.js';
import type { CameraDriver, CameraInfo, CaptureStats, Frame } from './types.js';

export const ROTATIONS = [0, 90, 180, 270] as const;
export const FLIPS = ['none', 'horizontal', 'vertical'] as const;
export type Rotation = (typeof ROTATIONS)[number];
export type Flip = (typeof FLIPS)[number];

export interface Orientation {
  rotate: Rotation;
  flip: Flip;
}

export function isIdentity(o: Partial<Orientation>): boolean {
  return (o.rotate ?? 0) === 0 && (o.flip ?? 'none') === 'none';
}

/** A new Mat with the orientation applied; the input is left as it is (the caller owns it). */
export function orientMat(mat: Mat, o: Orientation): Mat {
  let out: Mat | null = null;
  if (o.rotate === 90) out = mat.rotate(cv.ROTATE_90_CLOCKWISE);
  else if (o.rotate === 180) out = mat.rotate(cv.ROTATE_180);
  else if (o.rotate === 270) out = mat.rotate(cv.ROTATE_90_COUNTERCLOCKWISE);
  if (o.flip !== 'none') {
    const src = out ?? mat;
    const flipped = src.flip(o.flip === 'horizontal' ? 1 : 0);
    if (out) out.release();
    out = flipped;
  }
  return out ?? mat.copy();
}

/** A camera whose frames come out corrected (width and height follow the rotation). */
export class OrientedCamera implements CameraDriver {
  constructor(
    private readonly inner: CameraDriver,
    private readonly orientation: Orientation,
  ) {}

  get info(): CameraInfo {
    const i = this.inner.info;
    const swap = this.orientation.rotate === 90 || this.orientation.rotate === 270;
    return swap ? { ...i, width: i.height, height: i.width } : i;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  async *frames(): AsyncIterable<Frame> {
    for await (const f of this.inner.frames()) {
      let mat: Mat;
      try {
        mat = orientMat(f.mat, this.orientation);
      } finally {
        releaseFrame(f);
      }
      // Not spread: a JPEG frame's decodes (`jpeg`) would show the image unturned.
      const { capturedAt, capturedMono, seq } = f;
      yield { mat, width: mat.cols, height: mat.rows, capturedAt, capturedMono, seq };
    }
  }

  stats(): CaptureStats {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The clockwise rotation (0, 90, 180, 270) that stands this face upright, from its landmarks. */
export function uprightRotation(landmarks: readonly (readonly [number, number])[]): Rotation {
  const [re, le, , rm, lm] = landmarks as [number, number][];
  if (!re || !le || !rm || !lm) return 0;
  const ux = (re[0] + le[0]) / 2 - (rm[0] + lm[0]) / 2;
  const uy = (re[1] + le[1]) / 2 - (rm[1] + lm[1]) / 2;
  // 0: head up; 90: head pointing right (the image was turned clockwise); -90: left; 180: down.
  const headDeg = (Math.atan2(ux, -uy) * 180) / Math.PI;
  const quarter = ((Math.round(headDeg / 90) % 4) + 4) % 4;
  return (((4 - quarter) % 4) * 90) as Rotation;
}
