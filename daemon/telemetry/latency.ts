/**
 * Per-stage latency figures for `health`: each stage keeps its last N samples in a fixed ring
 * (bounded memory, recent behaviour), and p50/p95 are computed on demand, which is rare
 * (every health interval) compared with recording (every frame).
 */
import type { LatencyFigures } from '../contract/payloads.js';

/** Nearest-rank percentile of ascending `sorted` values (q in 0..1); null when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil(Math.min(Math.max(q, 0), 1) * sorted.length);
  return sorted[Math.max(rank, 1) - 1] as number;
}

export class LatencyRing {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;

  constructor(readonly capacity = 512) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** p50/p95 over the samples held, rounded to 0.1 ms. */
  figures(): LatencyFigures {
    const sorted = this.samples.slice(0, this.count).sort();
    const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
    return { p50: round(percentile(sorted, 0.5)), p95: round(percentile(sorted, 0.95)), n: this.count };
  }

  clear(): void {
    this.count = 0;
    this.next = 0;
  }
}

/** One ring per named stage (capture, detect, align, liveness, decide, publish, ...). */
export class StageLatencies {
  private readonly rings = new Map<string, LatencyRing>();

  constructor(private readonly capacity = 512) {}

  record(stage: string, ms: number): void {
    let ring = this.rings.get(stage);
    if (!ring) {
      ring = new LatencyRing(this.capacity);
      this.rings.set(stage, ring);
    }
    ring.record(ms);
  }

  snapshot(): Record<string, LatencyFigures> {
    const out: Record<string, LatencyFigures> = {};
    for (const [stage, ring] of this.rings) out[stage] = ring.figures();
    return out;
  }
}
