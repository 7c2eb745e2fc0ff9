import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';
import { isKioskError } from '../../core/errors.js';
import {
  measureQuality,
  qualityGate,
  SHARPNESS_HALF_POINT,
  sharpnessFromLaplacianVariance,
} from '../../daemon/decision/quality.js';
import type { Box, FaceQuality } from '../../daemon/decision/types.js';
import { needsSharedData, shared } from '../helpers/paths.js';

const cfg = configSchema.parse({}).quality;

/**
 * Face boxes in the sample images: hopper, F2 and astronaut from OpenCV's Haar cascade
 * (haarcascade_frontalface_default); T1 and F1 (faces lying sideways, which the cascade misses)
 * drawn by hand around the face. They are inputs, not expected outputs.
 */
const FACES: Record<string, Box> = {
  'images/T1.jpg': [260, 100, 240, 220],
  'images/F1.jpg': [280, 170, 220, 260],
  'images/F2.jpg': [17, 78, 209, 209],
  'images/hopper.jpg': [153, 85, 228, 228],
  'images/astronaut.png': [177, 66, 95, 95],
};

function crop(rel: string): { face: Mat; box: Box } {
  const box = FACES[rel] as Box;
  const image = cv.imread(shared(rel));
  return { face: image.getRegion(new cv.Rect(...box)).copy(), box };
}

// The binding's gaussianBlur defaults to BORDER_CONSTANT (a black frame); OpenCV's default is REFLECT_101.
const gauss = (m: Mat, sigma: number) =>
  m.gaussianBlur(new cv.Size(0, 0), sigma, sigma, cv.BORDER_REFLECT_101);
/** "Heavy" blur: sigma = face_px / 50, about 2 px at the 112 px the sharpness is measured at. */
const blurred = (face: Mat, box: Box) => gauss(face, Math.min(box[2], box[3]) / 50);

describe('sharpness mapping', () => {
  it('is 0 at no edges, 0.5 at the half point and saturates below 1', () => {
    assert.equal(sharpnessFromLaplacianVariance(0), 0);
    assert.equal(sharpnessFromLaplacianVariance(Number.NaN), 0);
    assert.equal(sharpnessFromLaplacianVariance(SHARPNESS_HALF_POINT), 0.5);
    assert.ok(sharpnessFromLaplacianVariance(1e9) < 1);
    let prev = 0;
    for (const v of [1, 10, 100, 1000, 10000]) {
      const s = sharpnessFromLaplacianVariance(v);
      assert.ok(s > prev, `monotonic at ${v}`);
      prev = s;
    }
  });
});

describe('qualityGate', () => {
  const good: FaceQuality = { face_px: 120, sharpness: 0.4, brightness: 0.5 };
  it('passes a good face, including values exactly at the limits', () => {
    assert.equal(qualityGate(good, cfg), null);
    const edge = { face_px: cfg.min_face_px, sharpness: cfg.min_sharpness, brightness: cfg.max_brightness };
    assert.equal(qualityGate(edge, cfg), null);
    assert.equal(qualityGate({ ...edge, brightness: cfg.min_brightness }, cfg), null);
  });

  it('names the first failing gate: face_size, then brightness, then sharpness', () => {
    assert.equal(qualityGate({ face_px: 10, sharpness: 0, brightness: 0 }, cfg), 'face_size');
    assert.equal(qualityGate({ ...good, sharpness: 0.01, brightness: 0.99 }, cfg), 'brightness');
    assert.equal(qualityGate({ ...good, sharpness: 0.01 }, cfg), 'sharpness');
    assert.equal(qualityGate({ ...good, brightness: 0.1 }, cfg), 'brightness');
    assert.equal(qualityGate({ ...good, brightness: 0.95 }, cfg), 'brightness');
    assert.equal(qualityGate({ ...good, sharpness: Number.NaN }, cfg), 'sharpness', 'NaN fails closed');
  });
});

describe('measureQuality on the sample images', { skip: needsSharedData(...Object.keys(FACES)) }, () => {
  for (const rel of Object.keys(FACES)) {
    it(`${rel}: the sharp face passes, a heavily blurred one fails on sharpness`, () => {
      const { face, box } = crop(rel);
      const sharp = measureQuality(face, box);
      const blur = measureQuality(blurred(face, box), box);
      const line = `sharp ${sharp.sharpness.toFixed(3)} blurred ${blur.sharpness.toFixed(3)} brightness ${sharp.brightness.toFixed(3)}`;
      console.log(`# ${rel} face_px ${sharp.face_px}: ${line}`);
      assert.equal(sharp.face_px, Math.min(box[2], box[3]));
      assert.equal(qualityGate(sharp, cfg), null, `${rel}: ${line}`);
      assert.ok(blur.sharpness < cfg.min_sharpness, `${rel}: ${line}`);
      assert.ok(Math.abs(blur.brightness - sharp.brightness) < 0.01, 'blur keeps the mean');
    });
  }

  it('sharpness falls as blur grows and depends little on face size', () => {
    const { face, box } = crop('images/hopper.jpg');
    const values = [0.5, 1, 2, 4].map((s) => measureQuality(gauss(face, s), box).sharpness);
    for (let i = 1; i < values.length; i++)
      assert.ok((values[i] as number) < (values[i - 1] as number), `${values}`);
    // The same face at half resolution is measured at the same 112 px.
    const half = face.resize(box[3] / 2, box[2] / 2, 0, 0, cv.INTER_AREA);
    const big = measureQuality(face, box).sharpness;
    const small = measureQuality(half, box).sharpness;
    assert.ok(Math.abs(big - small) < 0.2, `full ${big.toFixed(3)} vs half ${small.toFixed(3)}`);
  });

  it('reports a dark or overexposed face as brightness, though it also measures blurry', () => {
    const { face, box } = crop('images/T1.jpg');
    const dark = measureQuality(face.convertTo(cv.CV_8UC3, 0.2), box);
    const bright = measureQuality(face.convertTo(cv.CV_8UC3, 1, 230), box);
    assert.ok(dark.brightness < cfg.min_brightness, `dark ${dark.brightness}`);
    assert.ok(bright.brightness > cfg.max_brightness, `bright ${bright.brightness}`);
    assert.ok(
      dark.sharpness < cfg.min_sharpness && bright.sharpness < cfg.min_sharpness,
      'contrast collapsed',
    );
    assert.equal(qualityGate(dark, cfg), 'brightness');
    assert.equal(qualityGate(bright, cfg), 'brightness');
  });
});

describe('measureQuality input checks', () => {
  it('throws a KioskError for an empty crop', () => {
    assert.throws(
      () => measureQuality(new cv.Mat(), [0, 0, 0, 0]),
      (e) => isKioskError(e) && /at least 2x2/.test(e.message),
    );
  });

  it('measures a grey crop and a flat image as having no sharpness', () => {
    const flat = new cv.Mat(120, 120, cv.CV_8UC1, 128);
    const q = measureQuality(flat, [0, 0, 120, 120]);
    assert.equal(q.sharpness, 0);
    assert.ok(Math.abs(q.brightness - 128 / 255) < 1e-9);
  });
});
