import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IouTracker, iou } from '../../daemon/decision/tracker.js';
import type { Box } from '../../daemon/decision/types.js';

const cfg = { track_iou: 0.3, track_lost_ms: 700 };

describe('iou', () => {
  it('is 1 for identical boxes and 0 for disjoint or touching ones', () => {
    assert.equal(iou([10, 10, 50, 40], [10, 10, 50, 40]), 1);
    assert.equal(iou([0, 0, 10, 10], [20, 20, 10, 10]), 0);
    assert.equal(iou([0, 0, 10, 10], [10, 0, 10, 10]), 0, 'sharing an edge is no overlap');
  });

  it('matches hand-computed overlaps and is symmetric', () => {
    // Overlap 5x10 = 50, union 100 + 100 - 50 = 150.
    assert.equal(iou([0, 0, 10, 10], [5, 0, 10, 10]), 50 / 150);
    assert.equal(iou([5, 0, 10, 10], [0, 0, 10, 10]), 50 / 150);
    // A box inside another: inter = small area, union = big area.
    assert.equal(iou([0, 0, 100, 100], [25, 25, 50, 50]), 2500 / 10000);
  });

  it('is 0 for empty or negative-size boxes instead of NaN', () => {
    assert.equal(iou([0, 0, 0, 0], [0, 0, 0, 0]), 0);
    assert.equal(iou([0, 0, -10, 10], [0, 0, 10, 10]), 0);
    assert.equal(iou([0, 0, Number.NaN, 10], [0, 0, 10, 10]), 0);
  });
});

describe('IouTracker', () => {
  it('keeps ids for faces that move a little and numbers new faces from 1', () => {
    const t = new IouTracker(cfg);
    const a: Box = [100, 100, 80, 80];
    const b: Box = [400, 120, 90, 90];
    assert.deepEqual(t.update([a, b], 0).assignments, [
      { trackId: 1, detectionIndex: 0 },
      { trackId: 2, detectionIndex: 1 },
    ]);
    // Same faces, shifted a few pixels, reported in the other order.
    const u = t.update(
      [
        [405, 125, 90, 90],
        [104, 98, 80, 80],
      ],
      33,
    );
    assert.deepEqual(u.assignments, [
      { trackId: 2, detectionIndex: 0 },
      { trackId: 1, detectionIndex: 1 },
    ]);
    assert.deepEqual(u.lost, []);
  });

  it('opens a new track when the overlap is at or below track_iou', () => {
    const t = new IouTracker(cfg);
    t.update([[0, 0, 10, 10]], 0);
    // IoU 50/150 = 0.333 > 0.3 continues; a box with IoU 25/175 does not.
    assert.equal(t.update([[5, 0, 10, 10]], 10).assignments[0]?.trackId, 1);
    assert.equal(t.update([[10, 5, 10, 10]], 20).assignments[0]?.trackId, 2, 'IoU 25/175 is too low');
  });

  it('gives a contested track to the best-overlapping detection', () => {
    const t = new IouTracker(cfg);
    t.update([[100, 100, 100, 100]], 0);
    const u = t.update(
      [
        [140, 100, 100, 100],
        [110, 100, 100, 100],
      ],
      10,
    );
    assert.deepEqual(u.assignments, [
      { trackId: 2, detectionIndex: 0 },
      { trackId: 1, detectionIndex: 1 },
    ]);
  });

  it('expires tracks after track_lost_ms without a match and never reuses ids', () => {
    const t = new IouTracker(cfg);
    const box: Box = [50, 50, 100, 100];
    t.update([box], 0);
    assert.deepEqual(t.update([], 700).lost, [], 'exactly track_lost_ms is not yet lost');
    assert.deepEqual(t.trackIds(), [1]);
    const u = t.update([box], 701);
    assert.deepEqual(u.lost, [1], 'expired before matching, so the same spot gets a new id');
    assert.deepEqual(u.assignments, [{ trackId: 2, detectionIndex: 0 }]);
    assert.deepEqual(t.trackIds(), [2]);
  });

  it('keeps a track alive through short detection gaps', () => {
    const t = new IouTracker(cfg);
    const box: Box = [50, 50, 100, 100];
    for (let ms = 0; ms <= 3000; ms += 300) {
      const u = t.update(ms % 600 === 0 ? [box] : [], ms);
      assert.deepEqual(u.lost, []);
    }
    assert.equal(t.update([box], 3700).assignments[0]?.trackId, 1);
  });
});
