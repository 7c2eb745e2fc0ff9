/**
 * Thresholds from a drill's data: sweep the model's threshold (replay.ts), and pick the one
 * that meets the site's target. Refuses, with how many more presentations are needed, when
 * the data are too few to support the target. Proposing never changes anything: applying is a
 * separate, explicit step (apply.ts).
 */

import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { DecisionConfig } from '../decision/types.js';
import type { PresentationRecord } from './record.js';
import {
  candidateThresholds,
  frameOutcomes,
  frameScores,
  presenceOutcomes,
  type ThresholdAxis,
} from './replay.js';
import { type ErrorRates, errorRates, requiredSamples } from './stats.js';

export type Target = { kind: 'bpcer'; max: number } | { kind: 'eer' };
export type Basis = 'presence' | 'frame';

/**
 * Below this many presentations of a class, one presentation moves that class's rate by more
 * than 10 points: too coarse to trade one error against the other (EER, lowest APCER).
 */
export const MIN_PER_CLASS = 10;

export function parseTarget(text: string): Target {
  const t = text.trim().toLowerCase();
  if (t === 'eer') return { kind: 'eer' };
  const m = /^bpcer\s*(<=|=|:)?\s*([0-9]*\.?[0-9]+)\s*(%?)$/.exec(t);
  if (m) {
    const v = Number(m[2]) / (m[3] === '%' ? 100 : 1);
    if (v > 0 && v < 1) return { kind: 'bpcer', max: v };
  }
  throw new KioskError(
    ErrorCodes.USAGE,
    `target "${text}" is not understood: use eer or bpcer<=P (P a percentage like 1% or a fraction like 0.01, above 0 and below 1)`,
  );
}

export function describeTarget(t: Target): string {
  return t.kind === 'eer'
    ? 'EER (BPCER = APCER)'
    : `BPCER <= ${+(t.max * 100).toPrecision(4)} % with the lowest APCER`;
}

export interface CurvePoint {
  threshold: number;
  rates: ErrorRates;
}

/** Error rates at every candidate threshold, per presence (replayed) or per frame. */
export function sweep(
  ps: readonly PresentationRecord[],
  axis: ThresholdAxis,
  cfg: DecisionConfig,
  basis: Basis,
): CurvePoint[] {
  const frames = frameScores(ps, axis);
  return candidateThresholds(frames).map((t) => ({
    threshold: t,
    rates: errorRates(
      basis === 'frame' ? frameOutcomes(frames, axis, t) : presenceOutcomes(ps, axis, t, cfg),
    ),
  }));
}

const worst = (r: ErrorRates): number => (r.worstAttack === null ? 0 : (r.apcer[r.worstAttack]?.rate ?? 0));

export type Proposal =
  | {
      status: 'proposed';
      target: Target;
      basis: Basis;
      key: string;
      threshold: number;
      /** What set_thresholds would receive. */
      update: Record<string, number>;
      /** Rates on the drill's data at the proposed threshold. */
      at: ErrorRates;
      /** For an EER target: the equal error rate found. */
      eer?: number;
    }
  | {
      status: 'refused';
      target: Target;
      basis: Basis;
      code: string;
      message: string;
      /** Further presentations needed, by class (0: enough). */
      need: { bona_fide: number; attack: number };
    };

export function propose(
  curve: readonly CurvePoint[],
  axis: ThresholdAxis,
  target: Target,
  basis: Basis,
): Proposal {
  const any = curve[0]?.rates;
  const nBona = any?.bpcer.n ?? 0;
  const nAttack = any ? Object.values(any.apcer).reduce((s, r) => s + r.n, 0) : 0;
  const unit = basis === 'presence' ? 'presentations' : 'frames';
  const needBona = target.kind === 'bpcer' ? (requiredSamples(target.max) as number) : MIN_PER_CLASS;
  const need = { bona_fide: Math.max(0, needBona - nBona), attack: Math.max(0, MIN_PER_CLASS - nAttack) };
  const refuse = (message: string, code: string = ErrorCodes.DRILL_TOO_FEW): Proposal => ({
    status: 'refused',
    target,
    basis,
    code,
    message,
    need,
  });
  if (need.bona_fide > 0 || need.attack > 0) {
    const why =
      target.kind === 'bpcer'
        ? `showing BPCER <= ${+(target.max * 100).toPrecision(4)} % at 95 % confidence takes at least ${needBona} bona fide ${unit} without an error (rule of three)`
        : `an EER needs at least ${MIN_PER_CLASS} ${unit} of each class`;
    const more = [
      need.bona_fide ? `${need.bona_fide} more bona fide` : '',
      need.attack ? `${need.attack} more attack` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    return refuse(
      `too few ${unit} for ${describeTarget(target)}: ${nBona} bona fide and ${nAttack} attack recorded; ${why}, and the lowest APCER needs at least ${MIN_PER_CLASS} attack ${unit}. Record ${more}.`,
    );
  }
  const ok = (p: CurvePoint) => p.rates.bpcer.rate !== null;
  let best: CurvePoint[];
  let eer: number | undefined;
  if (target.kind === 'bpcer') {
    const meets = curve.filter((p) => ok(p) && (p.rates.bpcer.rate as number) <= target.max);
    if (!meets.length) {
      const lowest = Math.min(...curve.filter(ok).map((p) => p.rates.bpcer.rate as number));
      return refuse(
        `no threshold reaches BPCER <= ${+(target.max * 100).toPrecision(4)} % on these ${unit} (the lowest is ${(lowest * 100).toFixed(2)} %)`,
        ErrorCodes.DRILL_INVALID,
      );
    }
    const key = (p: CurvePoint) => [worst(p.rates), p.rates.bpcer.rate as number];
    best = ties(meets, key);
  } else {
    const key = (p: CurvePoint) => {
      const b = p.rates.bpcer.rate as number;
      const a = worst(p.rates);
      return [Math.abs(b - a), Math.max(a, b)];
    };
    best = ties(curve.filter(ok), key);
    const first = best[0] as CurvePoint;
    eer = ((first.rates.bpcer.rate as number) + worst(first.rates)) / 2;
  }
  const chosen = widestMiddle(curve, best);
  return {
    status: 'proposed',
    target,
    basis,
    key: axis.key,
    threshold: chosen.threshold,
    update: axis.update(chosen.threshold),
    at: chosen.rates,
    ...(eer === undefined ? {} : { eer }),
  };
}

/** The points with the lexicographically smallest key (curve order kept). */
function ties(points: readonly CurvePoint[], key: (p: CurvePoint) => number[]): CurvePoint[] {
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++)
      if ((a[i] as number) !== (b[i] as number)) return (a[i] as number) - (b[i] as number);
    return 0;
  };
  let best: number[] | null = null;
  let out: CurvePoint[] = [];
  for (const p of points) {
    const k = key(p);
    const c = best === null ? -1 : cmp(k, best);
    if (c < 0) {
      best = k;
      out = [p];
    } else if (c === 0) out.push(p);
  }
  return out;
}

/**
 * Among equally good thresholds, the one nearest the middle of the widest run of them: the
 * largest margin to either side, so small score drifts do not change the outcome.
 */
function widestMiddle(curve: readonly CurvePoint[], best: readonly CurvePoint[]): CurvePoint {
  const chosen = new Set(best);
  let run: CurvePoint[] = [];
  let widest: CurvePoint[] = [];
  const span = (r: CurvePoint[]) =>
    r.length ? (r.at(-1) as CurvePoint).threshold - (r[0] as CurvePoint).threshold : -1;
  for (const p of curve) {
    if (chosen.has(p)) run.push(p);
    else run = [];
    if (span(run) > span(widest)) widest = [...run];
  }
  const mid = ((widest[0] as CurvePoint).threshold + (widest.at(-1) as CurvePoint).threshold) / 2;
  return widest.reduce((a, b) => (Math.abs(b.threshold - mid) < Math.abs(a.threshold - mid) ? b : a));
}
