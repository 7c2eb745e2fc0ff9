import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentiles, StreamStats, slope, soakVerdict, totalRatio } from '../../bench/perf/stats.js';

describe('performance report arithmetic', () => {
  it('percentiles are nearest-rank over the samples', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    assert.deepEqual(percentiles(xs), { p50: 50, p95: 95, p99: 99, n: 100 });
    assert.deepEqual(percentiles([]), { p50: null, p95: null, p99: null, n: 0 });
  });

  it('streamed percentiles match the nearest-rank ones within the histogram precision', () => {
    const s = new StreamStats();
    assert.deepEqual(s.percentiles(), { p50: null, p95: null, p99: null, n: 0 });
    for (let i = 100; i >= 1; i--) s.record(i * 1.5); // 150..1.5 ms, unsorted
    s.record(Number.NaN); // ignored
    const p = s.percentiles();
    assert.equal(p.n, 100);
    assert.equal(s.total, 1.5 * 5050);
    // 3 significant digits: within 0.1 % of 75, 142.5 and 148.5 ms.
    for (const [got, want] of [
      [p.p50, 75],
      [p.p95, 142.5],
      [p.p99, 148.5],
    ] as const) {
      assert.ok(got !== null && Math.abs(got - want) <= want * 0.001, `${got} vs ${want}`);
    }
    assert.equal(totalRatio(11, 10), 1.1);
    assert.equal(totalRatio(1, 0), null);
  });

  it('overhead is total frame time over total network time', () => {
    const frame = new StreamStats();
    const net = new StreamStats();
    for (const ms of [12, 10, 11]) frame.record(ms);
    for (const ms of [10, 10, 10]) net.record(ms);
    assert.equal(totalRatio(frame.total, net.total), 1.1);
    assert.equal(totalRatio(5, new StreamStats().total), null);
  });

  it('slope is the least-squares line', () => {
    assert.equal(slope([0, 1, 2, 3], [1, 3, 5, 7]), 2);
    assert.equal(slope([1, 1], [1, 2]), null);
  });

  it('a flat soak is within 2 %; a leak is not', () => {
    const flat = [0, 1000, 2000, 3000, 4000].map((frame, i) => ({ frame, rssMiB: 300 + (i % 2 ? 3 : -1) }));
    const v = soakVerdict(flat, 1000);
    assert.ok(v);
    assert.equal(v.baselineMiB, 303); // the first sample at or after frame 1000
    assert.equal(v.withinTolerance, true);
    // +1 MiB per 1000 frames from 300 MiB: 2.7 % drift by the last sample.
    const leak = [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000].map((frame) => ({
      frame,
      rssMiB: 300 + frame / 1000,
    }));
    const w = soakVerdict(leak, 0);
    assert.ok(w);
    assert.equal(w.trendMiBPer10k, 10);
    assert.equal(w.withinTolerance, false);
    // Growth that stays inside the 2 % band (1.8 %) but climbs steadily: a trend, flagged.
    const creep = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => ({
      frame: k * 1000,
      rssMiB: 300 + k * 0.55,
    }));
    assert.equal(soakVerdict(creep, 0)?.withinTolerance, false);
    assert.equal(soakVerdict([{ frame: 5, rssMiB: 1 }], 0), null);
  });
});
