/**
 * The one place that loads OpenCV. @u4/opencv4nodejs is CommonJS and prints "Info:" lines on
 * stdout while loading; we silence stdout for the duration so CLI JSON output stays clean.
 */
import { createRequire } from 'node:module';
import type * as CvTypes from '@u4/opencv4nodejs';

const require = createRequire(import.meta.url);

function loadOpenCv(): typeof CvTypes.default {
  process.env.OPENCV4NODEJS_DISABLE_AUTOBUILD = '1';
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
