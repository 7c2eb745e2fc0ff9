/**
 * What the preview draws over a frame: one box per considered face, coloured by what the
 * pipeline made of it, its five landmarks, and two label lines (track, verdict and liveness
 * scores; quality figures and the failed gate). `overlayShapes` is pure (tested on fixed
 * vectors); `drawOverlay` paints the shapes on a Mat with OpenCV and must get a copy of the
 * frame, never the pipeline's own.
 */
import { cv, type Mat } from '../../core/cv.js';
import type { FrameResult } from '../pipeline/pipeline.js';

/** BGR colours; saturated so a pixel test can tell them from the scene. */
export const OverlayColors = {
  live: [0, 255, 0],
  spoof: [0, 0, 255],
  uncertain: [0, 165, 255],
  gate: [0, 255, 255],
  none: [200, 200, 200],
  landmark: [255, 255, 0],
  text: [255, 255, 255],
  textBackground: [0, 0, 0],
} as const satisfies Record<string, readonly [number, number, number]>;

export type Bgr = readonly [number, number, number];
export type OverlayFace = FrameResult['faces'][number];

export interface OverlayShapes {
  rects: { x: number; y: number; w: number; h: number; color: Bgr; thickness: number }[];
  dots: { x: number; y: number; color: Bgr; radius: number }[];
  /** `org` is the text's bottom-left corner; a filled background box is drawn behind it. */
  labels: { text: string; x: number; y: number; color: Bgr }[];
}

export const BOX_THICKNESS = 3;
const LABEL_LINE_PX = 16;

export function faceColor(face: Pick<OverlayFace, 'qualityGate' | 'verdict'>): Bgr {
  if (face.qualityGate) return OverlayColors.gate;
  if (face.verdict) return OverlayColors[face.verdict];
  return OverlayColors.none;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));

/**
 * Two lines: "#3 new live p_live=0.97" and "112px sharp 0.45 bright 0.52 [gate: sharpness]".
 * `new`: a presence still to be decided; `held`: a person already accepted or rejected, not
 * classified again (one decision per presence), so usually without a verdict.
 */
export function faceLabel(face: OverlayFace): [string, string] {
  const verdict = face.qualityGate
    ? 'gated'
    : (face.verdict ?? (face.presence === 'held' ? '' : 'no verdict'));
  const state = [face.presence, verdict].filter(Boolean).join(' ');
  const scores = Object.entries(face.scores ?? {})
    .slice(0, 3)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');
  const q = face.quality;
  const gate = face.qualityGate ? ` gate: ${face.qualityGate}` : '';
  return [
    `#${face.trackId} ${state}${scores ? ` ${scores}` : ''}`,
    `${Math.round(q.face_px)}px sharp ${q.sharpness.toFixed(2)} bright ${q.brightness.toFixed(2)}${gate}`,
  ];
}

/** Boxes clipped to the frame; labels above the box, or below it when there is no room. */
export function overlayShapes(faces: readonly OverlayFace[], width: number, height: number): OverlayShapes {
  const out: OverlayShapes = { rects: [], dots: [], labels: [] };
  for (const face of faces) {
    const x0 = Math.max(0, Math.round(face.box[0]));
    const y0 = Math.max(0, Math.round(face.box[1]));
    const x1 = Math.min(width - 1, Math.round(face.box[0] + face.box[2]));
    const y1 = Math.min(height - 1, Math.round(face.box[1] + face.box[3]));
    if (x1 <= x0 || y1 <= y0) continue;
    const color = faceColor(face);
    out.rects.push({ x: x0, y: y0, w: x1 - x0, h: y1 - y0, color, thickness: BOX_THICKNESS });
    for (const [lx, ly] of face.landmarks) {
      if (lx >= 0 && ly >= 0 && lx < width && ly < height)
        out.dots.push({ x: Math.round(lx), y: Math.round(ly), color: OverlayColors.landmark, radius: 3 });
    }
    const [line1, line2] = faceLabel(face);
    // Baselines of the two lines: above the box when there is room, else below it.
    // The label backgrounds must not cover the box's edges (they are what a viewer looks for).
    const above = y0 >= 2 * LABEL_LINE_PX + 12;
    const first = above ? y0 - LABEL_LINE_PX - 10 : y1 + LABEL_LINE_PX + 8;
    out.labels.push({ text: line1, x: x0, y: first, color });
    out.labels.push({ text: line2, x: x0, y: first + LABEL_LINE_PX, color: OverlayColors.text });
  }
  return out;
}

const vec = (c: Bgr) => new cv.Vec3(c[0], c[1], c[2]);
const FONT_SCALE = 0.45;

/** Paints `shapes` on `mat` (a copy of the frame: this mutates it). */
export function drawOverlay(mat: Mat, shapes: OverlayShapes): void {
  for (const r of shapes.rects) {
    mat.drawRectangle(new cv.Rect(r.x, r.y, r.w, r.h), vec(r.color), r.thickness, cv.LINE_8);
  }
  for (const d of shapes.dots) mat.drawCircle(new cv.Point2(d.x, d.y), d.radius, vec(d.color), -1, cv.LINE_8);
  for (const l of shapes.labels) {
    const { size, baseLine } = cv.getTextSize(l.text, cv.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1);
    const bx = Math.max(0, Math.min(l.x, mat.cols - size.width - 4));
    const by = Math.max(size.height + 2, Math.min(l.y, mat.rows - baseLine - 2));
    mat.drawRectangle(
      new cv.Rect(bx, by - size.height - 2, size.width + 4, size.height + baseLine + 4),
      vec(OverlayColors.textBackground),
      -1,
      cv.LINE_8,
    );
    mat.putText(
      l.text,
      new cv.Point2(bx + 2, by),
      cv.FONT_HERSHEY_SIMPLEX,
      FONT_SCALE,
      vec(l.color),
      1,
      cv.LINE_AA,
    );
  }
}
