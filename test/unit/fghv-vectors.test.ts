/**
 * Preprocessing parity: the daemon's aligner reproduces the vectors the Python training code
 * wrote (models/fghv: python3 -m fghv make-vectors) from the same formula image.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cv, type Mat } from '../../core/cv.js';
import { similarityMatrix, toTensor, warpCrop } from '../../daemon/align/aligner.js';
import type { Point } from '../../daemon/detect/types.js';
import { repoRoot } from '../helpers/paths.js';

interface AlignmentCase {
  name: string;
  landmarks: Point[];
  matrix: number[];
  pixels: { x: number; y: number; bgr: [number, number, number] }[];
  tensor: { index: number; value: number }[];
  zero_pixels: number;
}

interface AlignmentVectors {
  image: { width: number; height: number };
  crop: { size: number; template: Point[] };
  tensor: { color: 'RGB' | 'BGR'; normalize: { mean: number[]; std: number[] } };
  tolerance: { matrix: number; pixel: number; tensor: number };
  cases: AlignmentCase[];
}

const vectors = JSON.parse(
  readFileSync(path.join(repoRoot, 'test/vectors/alignment.json'), 'utf8'),
) as AlignmentVectors;

/** B=(x*7+y*13)%256, G=(x*3+y*5+50)%256, R=(x*11+y*2+100)%256, as in models/fghv/fghv/vectors.py. */
function formulaImage(width: number, height: number): Mat {
  const buf = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      buf[o] = (x * 7 + y * 13) % 256;
      buf[o + 1] = (x * 3 + y * 5 + 50) % 256;
      buf[o + 2] = (x * 11 + y * 2 + 100) % 256;
    }
  }
  return new cv.Mat(buf, height, width, cv.CV_8UC3);
}

const image = formulaImage(vectors.image.width, vectors.image.height);
const size = vectors.crop.size;

test('the vector file covers the required cases', () => {
  const names = vectors.cases.map((c) => c.name);
  for (const n of ['frontal', 'rotated_20deg', 'small_face', 'near_border']) assert.ok(names.includes(n), n);
  const border = vectors.cases.find((c) => c.name === 'near_border');
  assert.ok(border && border.zero_pixels > 0, 'the near-border case must show the black border fill');
});

for (const c of vectors.cases) {
  test(`alignment vector ${c.name}: similarity matrix`, () => {
    const m = similarityMatrix(c.landmarks, vectors.crop.template);
    assert.equal(m.length, 6);
    m.forEach((v, i) => {
      const want = c.matrix[i] as number;
      assert.ok(Math.abs(v - want) <= vectors.tolerance.matrix, `m[${i}] = ${v}, python ${want}`);
    });
  });

  test(`alignment vector ${c.name}: crop pixels and tensor`, () => {
    const crop = warpCrop(image, c.matrix, size, size);
    assert.equal(crop.rows, size);
    assert.equal(crop.cols, size);
    for (const p of c.pixels) {
      const got = crop.atRaw(p.y, p.x) as unknown as number[];
      for (let ch = 0; ch < 3; ch++) {
        const diff = Math.abs((got[ch] as number) - (p.bgr[ch] as number));
        assert.ok(
          diff <= vectors.tolerance.pixel,
          `pixel (${p.x},${p.y}) ch ${ch}: ${got[ch]} vs ${p.bgr[ch]}`,
        );
      }
    }
    const t = toTensor(crop, vectors.tensor);
    assert.equal(t.length, 3 * size * size);
    for (const e of c.tensor) {
      const got = t[e.index] as number;
      assert.ok(
        Math.abs(got - e.value) <= vectors.tolerance.tensor,
        `tensor[${e.index}] = ${got}, python ${e.value}`,
      );
    }
  });
}
