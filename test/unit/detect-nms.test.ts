import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Box, clipBox, iou, nonMaxSuppression, postprocess } from '../../daemon/detect/nms.js';
import type { FaceDetection } from '../../daemon/detect/types.js';

const det = (box: Box, score: number): FaceDetection => ({
  box,
  score,
  landmarks: [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ],
});

describe('iou', () => {
  it('is 1 for identical boxes, 0 for disjoint or touching ones', () => {
    assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
    assert.equal(iou([0, 0, 10, 10], [10, 0, 10, 10]), 0);
    assert.equal(iou([0, 0, 10, 10], [50, 50, 5, 5]), 0);
  });
  it('computes partial overlap', () => {
    // 5x10 overlap of two 10x10 boxes: 50 / 150
    assert.equal(iou([0, 0, 10, 10], [5, 0, 10, 10]), 50 / 150);
    // a box inside another: 25 / 100
    assert.equal(iou([0, 0, 10, 10], [2, 2, 5, 5]), 0.25);
  });
  it('is 0 for an empty box', () => {
    assert.equal(iou([0, 0, 0, 0], [0, 0, 0, 0]), 0);
  });
});

describe('nonMaxSuppression', () => {
  it('keeps the best of overlapping boxes, sorted by score', () => {
    const out = nonMaxSuppression(
      [det([0, 0, 10, 10], 0.7), det([1, 1, 10, 10], 0.9), det([100, 100, 10, 10], 0.8)],
      0.3,
      10,
    );
    assert.deepEqual(
      out.map((d) => d.score),
      [0.9, 0.8],
    );
    assert.deepEqual(out[0]?.box, [1, 1, 10, 10]);
  });
  it('is greedy: a box suppressed by nothing kept survives a chain', () => {
    // A overlaps B (iou 1/3 > 0.3), B overlaps C, A and C are disjoint: B goes, A and C stay.
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([5, 0, 10, 10], 0.8);
    const c = det([10, 0, 10, 10], 0.7);
    assert.deepEqual(nonMaxSuppression([c, b, a], 0.3, 10), [a, c]);
  });
  it('keeps overlap exactly at the threshold and suppresses above it', () => {
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([2, 2, 5, 5], 0.8); // iou 0.25
    assert.equal(nonMaxSuppression([a, b], 0.25, 10).length, 2);
    assert.equal(nonMaxSuppression([a, b], 0.2, 10).length, 1);
  });
  it('caps the number of faces', () => {
    const many = Array.from({ length: 20 }, (_, i) => det([i * 20, 0, 10, 10], i / 20));
    const out = nonMaxSuppression(many, 0.3, 3);
    assert.deepEqual(
      out.map((d) => d.score),
      [19 / 20, 18 / 20, 17 / 20],
    );
  });
  it('keeps input order for equal scores', () => {
    const a = det([0, 0, 10, 10], 0.5);
    const b = det([0, 0, 10, 10], 0.5);
    assert.equal(nonMaxSuppression([a, b], 0.3, 10)[0], a);
  });
});

describe('clipBox / postprocess', () => {
  it('clips to the image and drops boxes entirely outside', () => {
    assert.deepEqual(clipBox([-5, -5, 20, 20], 100, 100), [0, 0, 15, 15]);
    assert.deepEqual(clipBox([90, 95, 20, 20], 100, 100), [90, 95, 10, 5]);
    assert.equal(clipBox([100, 0, 10, 10], 100, 100), null);
    assert.equal(clipBox([-20, 0, 10, 10], 100, 100), null);
  });
  it('thresholds scores, suppresses, caps and clips', () => {
    const out = postprocess(
      [
        det([-10, 10, 50, 50], 0.95),
        det([-8, 12, 50, 50], 0.9), // overlaps the first
        det([60, 60, 60, 60], 0.7),
        det([5, 70, 10, 10], 0.5), // below threshold
        det([200, 200, 10, 10], 0.99), // outside the image
      ],
      { scoreThreshold: 0.6, nmsIou: 0.3, maxFaces: 10, width: 100, height: 100 },
    );
    assert.deepEqual(
      out.map((d) => [d.box, d.score]),
      [
        [[0, 10, 40, 50], 0.95],
        [[60, 60, 40, 40], 0.7],
      ],
    );
  });
  it('drops NaN scores', () => {
    assert.equal(
      postprocess([det([0, 0, 5, 5], Number.NaN)], {
        scoreThreshold: 0,
        nmsIou: 0.3,
        maxFaces: 5,
        width: 9,
        height: 9,
      }).length,
      0,
    );
  });
});
