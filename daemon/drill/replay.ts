/**
 * What a drill's presentations would have given at other thresholds. Each recorded frame keeps
 * its scores, so the per-frame verdict is recomputed with the manifest's own verdict function
 * and the presentation is replayed through the production fuser (`fuse`, same decision config):
 * per-presence figures at a candidate threshold come from the same rules that open the door.
 *
 * One threshold is swept per model family: `live_min` on `p_live` (softmax models; `spoof_max`
 * follows it down so the band stays ordered) and `p_real_min` on `p_real` (FGHV; its variance
 * and delta-KL limits stay as they are).
 */
import { emptyFusionState, fuse } from '../decision/fusion.js';
import type { DecisionConfig, FrameObservation, SessionDecision } from '../decision/types.js';
import type { ModelInfo } from '../liveness/liveness-model.js';
import { fghvScoresOf, fghvThresholdsOf, softmaxThresholdsOf } from '../liveness/thresholds.js';
import { fghvVerdict, type SoftmaxThresholds, softmaxVerdict, type Verdict } from '../liveness/verdict.js';
import type { PresentationRecord } from './record.js';
import type { Outcome } from './stats.js';

export interface ThresholdAxis {
  /** The threshold swept (a key of the model's thresholds). */
  key: string;
  /** The score it applies to. */
  scoreKey: string;
  /** The thresholds in force. */
  current: Record<string, number>;
  verdict(scores: Record<string, number>, t: number): Verdict;
  /** The full set of threshold values to write for `t` (what set_thresholds receives). */
  update(t: number): Record<string, number>;
}

export function thresholdAxis(family: ModelInfo['family'], current: Record<string, number>): ThresholdAxis {
  if (family === 'fghv') {
    const base = fghvThresholdsOf(current);
    return {
      key: 'p_real_min',
      scoreKey: 'p_real',
      current,
      verdict: (s, t) => fghvVerdict(fghvScoresOf(s), { ...base, p_real_min: t }),
      update: (t) => ({ p_real_min: t }),
    };
  }
  const base = softmaxThresholdsOf(current);
  const at = (t: number): SoftmaxThresholds => ({ live_min: t, spoof_max: Math.min(base.spoof_max, t) });
  return {
    key: 'live_min',
    scoreKey: 'p_live',
    current,
    verdict: (s, t) => softmaxVerdict(s.p_live ?? Number.NaN, at(t)),
    update: (t): Record<string, number> => {
      const v = at(t);
      return v.spoof_max === base.spoof_max ? { live_min: t } : { live_min: t, spoof_max: v.spoof_max };
    },
  };
}

/** Presentations that count: complete ones (interrupted ones are kept in the record only). */
export function counted(ps: readonly PresentationRecord[]): PresentationRecord[] {
  return ps.filter((p) => p.status === 'complete');
}

/** Per-presence outcome as recorded: accepted when any decision of the presentation was accept. */
export function recordedOutcome(p: PresentationRecord): Outcome {
  return {
    label: p.label,
    attackType: p.attackType,
    accepted: p.decisions.some((d) => d.decision === 'accept'),
  };
}

/**
 * Replays one presentation at threshold t. Tracks unseen for track_lost_ms end as lost, like
 * the tracker; what is still open at the end is flushed as lost, like the pipeline at the end
 * of a source.
 */
export function replayPresentation(
  p: PresentationRecord,
  axis: ThresholdAxis,
  t: number,
  cfg: DecisionConfig,
): SessionDecision[] {
  let state = emptyFusionState();
  const out: SessionDecision[] = [];
  const lastSeen = new Map<number, number>();
  // Records keep no look (appearance.ts); a presentation is one subject, so every face of it
  // gets the same one and a detection gap does not turn the subject into a new presence.
  const subject = new Float32Array(1);
  for (const f of p.frames) {
    const observations: FrameObservation[] = f.faces.map((o) => ({
      ...o,
      capturedMono: f.t,
      verdict: o.scores && o.qualityGate === null ? axis.verdict(o.scores, t) : null,
      look: subject,
    }));
    for (const o of f.faces) lastSeen.set(o.trackId, f.t);
    const lost = [...lastSeen].filter(([, seen]) => f.t - seen > cfg.track_lost_ms).map(([id]) => id);
    for (const id of lost) lastSeen.delete(id);
    const r = fuse(state, { nowMs: f.t, cameraId: p.cameraId, observations, lostTrackIds: lost }, cfg);
    state = r.state;
    out.push(...r.decisions);
  }
  const end = p.frames.at(-1)?.t ?? 0;
  const open = Object.values(state.sessions).map((s) => s.trackId);
  out.push(
    ...fuse(state, { nowMs: end, cameraId: p.cameraId, observations: [], lostTrackIds: open }, cfg).decisions,
  );
  return out;
}

export interface FrameScore {
  label: PresentationRecord['label'];
  attackType: string | null;
  score: number;
  scores: Record<string, number>;
}

/** Every inferred frame's scores, labelled. */
export function frameScores(ps: readonly PresentationRecord[], axis: ThresholdAxis): FrameScore[] {
  const out: FrameScore[] = [];
  for (const p of ps)
    for (const f of p.frames)
      for (const o of f.faces) {
        if (!o.scores || o.qualityGate !== null) continue;
        const score = o.scores[axis.scoreKey];
        if (score === undefined) continue;
        out.push({ label: p.label, attackType: p.attackType, score, scores: o.scores });
      }
  return out;
}

/** Frame-level outcomes at t: a frame is "accepted" when its verdict is live. */
export function frameOutcomes(frames: readonly FrameScore[], axis: ThresholdAxis, t: number): Outcome[] {
  return frames.map((f) => ({
    label: f.label,
    attackType: f.attackType,
    accepted: axis.verdict(f.scores, t) === 'live',
  }));
}

/** Presence-level outcomes at t, by replay. */
export function presenceOutcomes(
  ps: readonly PresentationRecord[],
  axis: ThresholdAxis,
  t: number,
  cfg: DecisionConfig,
): Outcome[] {
  return ps.map((p) => ({
    label: p.label,
    attackType: p.attackType,
    accepted: replayPresentation(p, axis, t, cfg).some((d) => d.decision === 'accept'),
  }));
}

const MAX_CANDIDATES = 256;

/**
 * Candidate thresholds: midway between neighbouring distinct scores (so each sits in a gap,
 * not on a sample), plus 0 and just above the highest score; thinned to quantiles when there
 * are many. Within 0..1 (the range set_thresholds accepts for probabilities).
 */
export function candidateThresholds(frames: readonly FrameScore[]): number[] {
  let s = [...new Set(frames.map((f) => f.score).filter(Number.isFinite))].sort((a, b) => a - b);
  if (s.length > MAX_CANDIDATES)
    s = Array.from(
      { length: MAX_CANDIDATES },
      (_, i) => s[Math.round((i * (s.length - 1)) / (MAX_CANDIDATES - 1))] as number,
    );
  // Rounded to 6 decimals for people to read, unless that would land on a sample.
  const mids = s.slice(1).map((v, i) => {
    const lo = s[i] as number;
    const mid = (lo + v) / 2;
    const r = Math.round(mid * 1e6) / 1e6;
    return r > lo && r < v ? r : mid;
  });
  const top = s.length ? Math.min(1, Math.round(((s.at(-1) as number) + 1e-6) * 1e6) / 1e6) : 1;
  return [...new Set([0, ...mids, top])].sort((a, b) => a - b);
}
