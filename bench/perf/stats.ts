/**
 * The arithmetic of the performance report, kept pure so it is tested on fixed vectors
 * (test/unit/perf-stats.test.ts): percentiles, the pipeline-overhead ratio, and the soak's
 * memory verdict (drift from the post-warm-up value and the trend of a least-squares line).
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { percentile } from '../../daemon/telemetry/latency.js';

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  n: number;
}

const round = (v: number | null, digits = 2): number | null =>
  v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;

export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50: round(percentile(sorted, 0.5)),
    p95: round(percentile(sorted, 0.95)),
    p99: round(percentile(sorted, 0.99)),
    n: sorted.length,
  };
}

/**
 * Latency samples in bounded memory: a native HDR histogram (microsecond resolution, 3
 * significant digits, allocated once) plus a running total. A long soak must not measure its
 * own bookkeeping: keeping every sample in an array grew the V8 heap by about 7 MiB over
 * 100,000 frames.
 */
export class StreamStats {
  private readonly hist: RecordableHistogram = createHistogram({
    lowest: 1,
    highest: 3_600_000_000,
    figures: 3,
  });
  total = 0;
  n = 0;

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.total += ms;
    this.n++;
    this.hist.record(Math.max(1, Math.round(ms * 1000)));
  }

  percentiles(): Percentiles {
    if (this.n === 0) return { p50: null, p95: null, p99: null, n: 0 };
    const at = (q: number) => round(this.hist.percentile(q) / 1000);
    return { p50: at(50), p95: at(95), p99: at(99), n: this.n };
  }
}

/** Total over total, rounded to 3 digits; null when the denominator is not positive. */
export function totalRatio(numerator: number, denominator: number): number | null {
  return denominator > 0 ? round(numerator / denominator, 3) : null;
}

export function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Least-squares slope of y over x; null with fewer than two distinct x. */
export function slope(xs: readonly number[], ys: readonly number[]): number | null {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return null;
  const mx = sum(xs.slice(0, n)) / n;
  const my = sum(ys.slice(0, n)) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    sxx += dx * dx;
    sxy += dx * ((ys[i] as number) - my);
  }
  return sxx > 0 ? sxy / sxx : null;
}

export interface RssSample {
  frame: number;
  rssMiB: number;
  /** V8 heap in use, to tell JS growth from native (Mat, ONNX Runtime, allocator) growth. */
  heapMiB?: number;
}

export interface SoakVerdict {
  /** RSS at the first sample at or after the warm-up frame. */
  baselineMiB: number;
  finalMiB: number;
  maxMiB: number;
  /** Largest |RSS - baseline| / baseline over samples after warm-up, percent. */
  maxDriftPct: number;
  finalDriftPct: number;
  /** Trend of the samples after warm-up, MiB per 10,000 frames. */
  trendMiBPer10k: number | null;
  /** Goal: every sample within `tolerancePct` of the baseline, and the fitted line climbing less than half of it. */
  withinTolerance: boolean;
}

/**
 * "No upward trend" is judged on the least-squares line through the samples after warm-up: over
 * the run it may climb by at most half the tolerance band (a line that climbs further would leave
 * the band if the run went on). Sampling noise (GC, allocator) shows as drift, not as trend.
 */
export function soakVerdict(
  samples: readonly RssSample[],
  warmupFrame: number,
  tolerancePct = 2,
): SoakVerdict | null {
  const after = samples.filter((s) => s.frame >= warmupFrame);
  const first = after[0];
  const last = after[after.length - 1];
  if (!first || !last || after.length < 2) return null;
  const base = first.rssMiB;
  const drift = (v: number) => (Math.abs(v - base) / base) * 100;
  const maxDriftPct = Math.max(...after.map((s) => drift(s.rssMiB)));
  const k = slope(
    after.map((s) => s.frame),
    after.map((s) => s.rssMiB),
  );
  const climbPct = k === null ? 0 : ((k * (last.frame - first.frame)) / base) * 100;
  return {
    baselineMiB: round(base, 1) as number,
    finalMiB: round(last.rssMiB, 1) as number,
    maxMiB: round(Math.max(...after.map((s) => s.rssMiB)), 1) as number,
    maxDriftPct: round(maxDriftPct, 2) as number,
    finalDriftPct: round(((last.rssMiB - base) / base) * 100, 2) as number,
    trendMiBPer10k: k === null ? null : round(k * 10000, 2),
    withinTolerance: maxDriftPct <= tolerancePct && climbPct <= tolerancePct / 2,
  };
}
