/**
 * The one place that loads OpenCV. @u4/opencv4nodejs is CommonJS and prints "Info:" lines on
 * stdout while loading; we silence stdout for the duration so CLI JSON output stays clean.
 */
import { createRequire } from 'node:module';
import type * as CvTypes from '@u4/opencv4nodejs';

const require = createRequire(import.meta.url);

function loadOpenCv(): typeof CvTypes.default {
  process.env.OPENCV4NODEJS_DISABLE_AUTOBUILD = '1';
  // The binding's custom Mat allocator reports Mat memory to V8 from whatever thread frees
  // the Mat, including libuv worker threads of the *Async calls; under load that corrupted
  // V8's GC state here ("Check failed: marking_done_", a fatal crash within seconds of
  // capture). Without it V8 does not see Mat memory, so the pipeline releases frames itself.
  process.env.OPENCV4NODEJS_DISABLE_EXTERNAL_MEM_TRACKING = '1';
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    const mod = require('@u4/opencv4nodejs');
    return (mod.default ?? mod) as typeof CvTypes.default;
  } finally {
    process.stdout.write = write;
  }
}

export const cv = loadOpenCv();
export type Mat = CvTypes.Mat;
export type Point2 = CvTypes.Point2;
