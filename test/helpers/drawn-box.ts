/** Finds a box drawn by the preview overlay in a screenshot (status page tests). */
import type { Mat } from '../../core/cv.js';
import type { Bgr } from '../../daemon/status/overlay.js';

/**
 * A drawn face box: two horizontal runs (top, bottom) of one overlay colour spanning the same
 * columns, joined by vertical runs at both ends. Scene colours rarely match the saturated
 * palette, and never as a hollow rectangle (a filled patch is refused).
 */
export function findDrawnBox(
  img: Mat,
  colours: Bgr[],
  tol = 60,
): { x0: number; y0: number; x1: number; y1: number } | null {
  const { cols, rows } = img;
  const ch = img.channels;
  const data = img.getData();
  for (const c of colours) {
    const m = new Uint8Array(cols * rows);
    for (let i = 0; i < cols * rows; i++) {
      const o = i * ch;
      if (
        Math.abs((data[o] as number) - c[0]) <= tol &&
        Math.abs((data[o + 1] as number) - c[1]) <= tol &&
        Math.abs((data[o + 2] as number) - c[2]) <= tol
      )
        m[i] = 1;
    }
    const runs: { y: number; x0: number; x1: number }[] = [];
    for (let y = 0; y < rows; y++) {
      let start = -1;
      let gap = 0;
      for (let x = 0; x <= cols; x++) {
        const on = x < cols && m[y * cols + x] === 1;
        if (on) {
          if (start < 0) start = x;
          gap = 0;
        } else if (start >= 0 && ++gap > 3) {
          const end = x - gap;
          if (end - start >= 30) runs.push({ y, x0: start, x1: end });
          start = -1;
          gap = 0;
        }
      }
      if (start >= 0 && cols - 1 - start >= 30) runs.push({ y, x0: start, x1: cols - 1 });
    }
    const column = (x: number, y0: number, y1: number) => {
      let hit = 0;
      for (let y = y0; y <= y1; y++) {
        let any = false;
        for (let dx = -3; dx <= 3 && !any; dx++)
          any = x + dx >= 0 && x + dx < cols && m[y * cols + x + dx] === 1;
        if (any) hit++;
      }
      return hit / (y1 - y0 + 1);
    };
    for (const top of runs) {
      for (const bottom of runs) {
        if (bottom.y - top.y < 30 || Math.abs(bottom.x0 - top.x0) > 4 || Math.abs(bottom.x1 - top.x1) > 4)
          continue;
        const midY = Math.round((top.y + bottom.y) / 2);
        let inside = 0;
        for (let x = top.x0 + 6; x <= top.x1 - 6; x++) inside += m[midY * cols + x] as number;
        const hollow = inside / Math.max(1, top.x1 - top.x0 - 11) < 0.5;
        if (
          hollow &&
          column(top.x0 + 1, top.y, bottom.y) >= 0.9 &&
          column(top.x1 - 1, top.y, bottom.y) >= 0.9
        )
          return { x0: top.x0, y0: top.y, x1: top.x1, y1: bottom.y };
      }
    }
  }
  return null;
}
