/**
 * The CPU a video's decoding costs per frame, alone: every frame read with readAsync as the
 * daemon's file driver reads it (OpenCV's FFmpeg backend: decode and conversion to BGR).
 * Both pipelines of the equal-work comparison pay this; the report subtracts it to show
 * what the pipeline itself costs.
 *
 *   node dist/bench/perf/decode-cost.js VIDEO   ->   {"frames":..,"cpuMsPerFrame":..,"wallMsPerFrame":..}
 */
import { cv } from '../../core/cv.js';

const video = process.argv[2] ?? '';
const cap = new cv.VideoCapture(video);
let frames = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (;;) {
  const mat = await cap.readAsync();
  if (mat.empty) break;
  mat.release();
  frames++;
}
const cpu = process.cpuUsage(cpu0);
const round = (v: number) => Math.round(v * 100) / 100;
console.log(
  JSON.stringify({
    frames,
    cpuMsPerFrame: round((cpu.user + cpu.system) / 1000 / Math.max(1, frames)),
    wallMsPerFrame: round((performance.now() - t0) / Math.max(1, frames)),
  }),
);
