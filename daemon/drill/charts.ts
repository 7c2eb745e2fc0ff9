/**
 * The report's two pictures, drawn with OpenCV (core/cv.ts) and encoded as PNG: the DET curve
 * (BPCER against the worst APCER on normal-deviate axes, as ISO/IEC 19795-1 draws them) and
 * score histograms by class.
 */
import { cv, type Mat } from '../../core/cv.js';

type Bgr = [number, number, number];
const WHITE: Bgr = [255, 255, 255];
const BLACK: Bgr = [0, 0, 0];
const GREY: Bgr = [200, 200, 200];
/** Bona fide first, then one colour per attack type. */
export const PALETTE: Bgr[] = [
  [60, 160, 60],
  [40, 40, 220],
  [220, 120, 30],
  [160, 40, 160],
  [30, 160, 220],
  [120, 120, 120],
];

const vec = (c: Bgr) => new cv.Vec3(c[0], c[1], c[2]);
const pt = (x: number, y: number) => new cv.Point2(Math.round(x), Math.round(y));

function text(m: Mat, s: string, x: number, y: number, scale = 0.4, color: Bgr = BLACK): void {
  m.putText(s, pt(x, y), cv.FONT_HERSHEY_SIMPLEX, scale, vec(color), 1, cv.LINE_AA);
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function probit(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - lo) return -probit(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

export interface DetSeries {
  name: string;
  /** (APCER, BPCER) pairs in 0..1, in threshold order. */
  points: [number, number][];
}

const DET_TICKS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95];
const DET_MIN = 0.001;
const DET_MAX = 0.95;

/** DET curve as PNG. Rates of 0 (or 1) sit on the axis edge: the probit scale has no 0. */
export function detPng(series: DetSeries[], title: string): Buffer {
  const W = 640;
  const H = 520;
  const L = 70;
  const T = 40;
  const R = W - 20;
  const B = H - 60;
  const m = new cv.Mat(H, W, cv.CV_8UC3, [...WHITE]);
  try {
    const z0 = probit(DET_MIN);
    const z1 = probit(DET_MAX);
    const clamp = (v: number) => Math.min(DET_MAX, Math.max(DET_MIN, v));
    const x = (v: number) => L + ((probit(clamp(v)) - z0) / (z1 - z0)) * (R - L);
    const y = (v: number) => B - ((probit(clamp(v)) - z0) / (z1 - z0)) * (B - T);
    for (const t of DET_TICKS) {
      m.drawLine(pt(x(t), T), pt(x(t), B), vec(GREY), 1);
      m.drawLine(pt(L, y(t)), pt(R, y(t)), vec(GREY), 1);
      const label = `${+(t * 100).toPrecision(2)}`;
      text(m, label, x(t) - 8, B + 16);
      text(m, label, L - 32, y(t) + 4);
    }
    m.drawRectangle(pt(L, T), pt(R, B), vec(BLACK), 1);
    m.drawLine(pt(x(DET_MIN), y(DET_MIN)), pt(x(DET_MAX), y(DET_MAX)), vec(GREY), 1, cv.LINE_AA);
    text(m, 'APCER (worst attack type), %', L + 170, H - 20, 0.45);
    text(m, 'BPCER, %', 8, T - 12, 0.45);
    text(m, title, L + 60, 24, 0.5);
    series.forEach((s, i) => {
      const color = PALETTE[(i + 1) % PALETTE.length] as Bgr;
      const pts = [...s.points].sort((a, b) => a[0] - b[0] || b[1] - a[1]);
      for (let k = 1; k < pts.length; k++) {
        const [a0, b0] = pts[k - 1] as [number, number];
        const [a1, b1] = pts[k] as [number, number];
        m.drawLine(pt(x(a0), y(b0)), pt(x(a1), y(b1)), vec(color), 2, cv.LINE_AA);
      }
      for (const [a, b] of pts) m.drawCircle(pt(x(a), y(b)), 3, vec(color), -1, cv.LINE_AA);
      text(m, s.name, R - 180, T + 20 + 18 * i, 0.45, color);
    });
    return cv.imencode('.png', m);
  } finally {
    m.release();
  }
}

export interface HistogramPanel {
  title: string;
  /** Class name -> values in 0..1. */
  classes: { name: string; values: number[] }[];
  /** A vertical marker, e.g. the threshold in force. */
  marks: { label: string; at: number }[];
}

const BINS = 20;

/** Score histograms (share of each class per bin), one panel per entry, stacked vertically. */
export function histogramPng(panels: HistogramPanel[], xLabel: string): Buffer {
  const W = 640;
  const PH = 260;
  const H = PH * panels.length + 30;
  const m = new cv.Mat(H, W, cv.CV_8UC3, [...WHITE]);
  try {
    panels.forEach((panel, pi) => {
      const top = pi * PH;
      const L = 50;
      const R = W - 20;
      const T = top + 40;
      const B = top + PH - 30;
      const x = (v: number) => L + v * (R - L);
      m.drawRectangle(pt(L, T), pt(R, B), vec(BLACK), 1);
      text(m, panel.title, L, top + 22, 0.5);
      const k = Math.max(1, panel.classes.length);
      const binW = (R - L) / BINS;
      const shares = panel.classes.map((c) => {
        const counts = new Array<number>(BINS).fill(0);
        for (const v of c.values) {
          const i = Math.min(BINS - 1, Math.max(0, Math.floor(v * BINS)));
          counts[i] = (counts[i] ?? 0) + 1;
        }
        return counts.map((n) => (c.values.length ? n / c.values.length : 0));
      });
      const peak = Math.max(0.01, ...shares.flat());
      shares.forEach((s, ci) => {
        const color = PALETTE[ci % PALETTE.length] as Bgr;
        s.forEach((share, b) => {
          if (!share) return;
          const x0 = L + b * binW + (ci * binW) / k;
          const h = (share / peak) * (B - T);
          m.drawRectangle(pt(x0 + 1, B - h), pt(x0 + binW / k - 1, B), vec(color), -1);
        });
        const name = `${panel.classes[ci]?.name} (${panel.classes[ci]?.values.length})`;
        text(m, name, L + 0.1 * (R - L), T + 16 + 16 * ci, 0.4, color);
      });
      panel.marks.forEach((mark, i) => {
        m.drawLine(pt(x(mark.at), T), pt(x(mark.at), B), vec(BLACK), 1, cv.LINE_AA);
        text(m, mark.label, x(mark.at) + 3, B - 8 - 14 * i, 0.35);
      });
      for (let t = 0; t <= 10; t += 2) text(m, (t / 10).toFixed(1), x(t / 10) - 8, B + 14);
    });
    text(m, xLabel, W / 2 - 60, H - 8, 0.45);
    return cv.imencode('.png', m);
  } finally {
    m.release();
  }
}
