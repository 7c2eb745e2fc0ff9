/**
 * Error rates of a presentation attack detection test (ISO/IEC 30107-3) with their 95 %
 * confidence intervals. Pure functions: no I/O, no clock.
 *
 * - BPCER: share of bona fide presentations wrongly refused.
 * - APCER per attack type (PAI species): share of that type's attack presentations wrongly
 *   accepted; the APCER reported for the system is the worst type.
 * - ACER: (worst APCER + BPCER) / 2. ISO/IEC 30107-3:2023 no longer recommends it; it is
 *   reported because installers compare vendors by it.
 *
 * Intervals are Clopper-Pearson (exact binomial), two-sided 95 %. When no error was seen the
 * interval is [0, 3/n] (the "rule of three", a one-sided 95 % bound), as the issue asks.
 */

export const CONFIDENCE = 0.95;

export interface Interval {
  lower: number;
  upper: number;
  method: 'clopper_pearson' | 'rule_of_three';
}

export interface Rate {
  errors: number;
  n: number;
  /** errors / n; null when n = 0 (nothing to measure). */
  rate: number | null;
  /** null when n = 0. */
  ci: Interval | null;
}

/** log of the binomial probabilities P(X = i), i = 0..n, computed by recurrence. */
function logPmf(n: number, p: number): number[] {
  const out = new Array<number>(n + 1);
  if (p <= 0) return out.fill(Number.NEGATIVE_INFINITY).fill(0, 0, 1);
  if (p >= 1) return out.fill(Number.NEGATIVE_INFINITY).fill(0, n, n + 1);
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  let logC = 0;
  for (let i = 0; i <= n; i++) {
    out[i] = logC + i * lp + (n - i) * lq;
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  return out;
}

function sumExp(logs: number[]): number {
  const max = Math.max(...logs);
  if (max === Number.NEGATIVE_INFINITY) return 0;
  return Math.exp(max) * logs.reduce((s, l) => s + Math.exp(l - max), 0);
}

/** P(X <= k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return Math.min(1, sumExp(logPmf(n, p).slice(0, k + 1)));
}

/** P(X >= k) for X ~ Binomial(n, p), summed directly (no 1 - cdf cancellation). */
function binomialSf(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  return Math.min(1, sumExp(logPmf(n, p).slice(k)));
}

/** The p in [0, 1] where a monotone f crosses zero, by bisection to 1e-12. */
function bisect(f: (p: number) => number): number {
  let lo = 0;
  let hi = 1;
  const increasing = f(1) > f(0);
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > 0 === increasing) hi = mid;
    else lo = mid;
  }
  return (lo + hi) / 2;
}

/** Two-sided Clopper-Pearson interval for x errors in n trials. */
export function clopperPearson(x: number, n: number, confidence = CONFIDENCE): Interval {
  checkCounts(x, n);
  const a = (1 - confidence) / 2;
  const lower = x === 0 ? 0 : bisect((p) => binomialSf(x, n, p) - a);
  const upper = x === n ? 1 : bisect((p) => binomialCdf(x, n, p) - a);
  return { lower, upper, method: 'clopper_pearson' };
}

/** The 95 % interval this project reports: rule of three at zero errors, else Clopper-Pearson. */
export function errorInterval(x: number, n: number): Interval {
  checkCounts(x, n);
  if (x === 0) return { lower: 0, upper: Math.min(1, 3 / n), method: 'rule_of_three' };
  return clopperPearson(x, n);
}

function checkCounts(x: number, n: number): void {
  if (!Number.isInteger(x) || !Number.isInteger(n) || n < 1 || x < 0 || x > n) {
    throw new RangeError(`need integers 0 <= errors <= n and n >= 1 (got ${x} of ${n})`);
  }
}

export function rate(errors: number, n: number): Rate {
  if (n === 0) return { errors, n, rate: null, ci: null };
  return { errors, n, rate: errors / n, ci: errorInterval(errors, n) };
}

/**
 * Presentations needed to show, at 95 % confidence, that an error rate is at most `target`.
 * With no errors that is the rule of three, ceil(3 / target). With `observed` errors in
 * `n` so far, the smallest total at which the same observed proportion would have a
 * Clopper-Pearson upper bound at or below the target; null when the observed proportion
 * is itself above the target (more samples cannot show it).
 */
export function requiredSamples(target: number, observed?: { errors: number; n: number }): number | null {
  if (!(target > 0 && target < 1)) throw new RangeError(`target must be within (0, 1), got ${target}`);
  const zero = Math.ceil(3 / target - 1e-9);
  if (!observed || observed.errors === 0) return Math.max(zero, observed?.n ?? 0);
  const p = observed.errors / observed.n;
  if (p >= target) return null;
  const ok = (m: number) => clopperPearson(Math.round(p * m), m).upper <= target;
  if (ok(observed.n)) return observed.n;
  // The bound shrinks roughly like 1/sqrt(m): grow geometrically, then narrow down.
  let lo = observed.n;
  let hi = Math.max(zero, observed.n * 2);
  while (!ok(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > 1e7) return null;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface ErrorRates {
  bpcer: Rate;
  /** By attack type (PAI species). */
  apcer: Record<string, Rate>;
  /** The worst attack type by observed rate (ties: more presentations); null when no attacks. */
  worstAttack: string | null;
  /** (worst APCER + BPCER) / 2; null when either is unmeasured. */
  acer: number | null;
}

export interface Outcome {
  /** 'bona_fide' or an attack type. */
  label: 'bona_fide' | 'attack';
  attackType: string | null;
  /** The system accepted this presentation (for bona fide: correct; for an attack: an error). */
  accepted: boolean;
}

export function errorRates(outcomes: readonly Outcome[]): ErrorRates {
  const bona = outcomes.filter((o) => o.label === 'bona_fide');
  const byType = new Map<string, Outcome[]>();
  for (const o of outcomes) {
    if (o.label !== 'attack') continue;
    const type = o.attackType ?? 'unspecified';
    byType.set(type, [...(byType.get(type) ?? []), o]);
  }
  const bpcer = rate(bona.filter((o) => !o.accepted).length, bona.length);
  const apcer: Record<string, Rate> = {};
  for (const [type, list] of [...byType].sort(([a], [b]) => a.localeCompare(b)))
    apcer[type] = rate(list.filter((o) => o.accepted).length, list.length);
  let worstAttack: string | null = null;
  for (const [type, r] of Object.entries(apcer)) {
    const w = worstAttack === null ? null : (apcer[worstAttack] as Rate);
    if (!w || (r.rate ?? 0) > (w.rate ?? 0) || ((r.rate ?? 0) === (w.rate ?? 0) && r.n > w.n))
      worstAttack = type;
  }
  const worst = worstAttack === null ? null : (apcer[worstAttack] as Rate).rate;
  const acer = worst === null || bpcer.rate === null ? null : (worst + bpcer.rate) / 2;
  return { bpcer, apcer, worstAttack, acer };
}
