/** Per-frame verdicts from a model's scores and its manifest thresholds. Pure functions. */

export type Verdict = 'live' | 'spoof' | 'uncertain';

export type FghvScores = {
  p_real: number;
  var: number;
  delta_kl: number;
  kl_real: number;
  kl_attack: number;
};

export type FghvThresholds = {
  p_real_min: number;
  var_max: number;
  delta_kl_max: number;
};

export type SoftmaxThresholds = {
  live_min: number;
  spoof_max: number;
};

/**
 * FGHV's decision box (docs/fghv.md, "What FGHV is"): a face is live only when it is verified
 * twice. High variance of the correlations means the input is unlike anything seen in
 * training: that is "uncertain", never live (fail closed). NaN anywhere is uncertain too.
 */
export function fghvVerdict(s: FghvScores, t: FghvThresholds): Verdict {
  if (![s.p_real, s.var, s.delta_kl].every(Number.isFinite)) return 'uncertain';
  if (s.var > t.var_max) return 'uncertain';
  if (s.p_real >= t.p_real_min && s.delta_kl <= t.delta_kl_max) return 'live';
  return 'spoof';
}

/** Classifier probability of "live": live above live_min, spoof at or below spoof_max, uncertain between. */
export function softmaxVerdict(pLive: number, t: SoftmaxThresholds): Verdict {
  if (!Number.isFinite(pLive)) return 'uncertain';
  if (pLive >= t.live_min) return 'live';
  if (pLive <= t.spoof_max) return 'spoof';
  return 'uncertain';
}

export function softmax(logits: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const exps = Array.from({ length: logits.length }, (_, i) => Math.exp((logits[i] as number) - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
