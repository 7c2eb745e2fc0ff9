/**
 * Per-person fusion: many per-frame verdicts of one tracked face become exactly one decision
 * per person-session (README, "How a decision is made": k of n verified, quality gates passed; a
 * single bad frame must not open a gate; uncertainty never accepts).
 *
 * `fuse` is a pure reducer: the caller passes the time in and keeps the returned state; no
 * clock, randomness or I/O here, so every rule below is testable on fixed sequences. Keep one
 * state per camera (track ids come from that camera's tracker).
 *
 * Rules, checked after each frame of a session, in this order:
 *  1. multiple_faces = 'retry' and more than one face in view: retry `multiple_faces`. This
 *     ends the session (it is its one decision), so it is sent at most once per session; the
 *     track then cools down, and if the crowd is still there afterwards the next session ends
 *     the same way. With 'largest', only the largest box of each step is fused; the other
 *     faces are ignored (no session starts for them, open ones get no frames).
 *  2. spoof verdicts in the session >= min_spoof: reject `spoof_detected` at once (attacks
 *     fail fast and cannot be diluted by waiting).
 *  3. once `frames` verdicts were inferred, over the last `frames` of them: no spoof and at
 *     least max(min_live, a strict majority of frames) live: accept `live_verified`. So with
 *     frames > 1 no single frame ever accepts, and uncertain frames never count as live.
 *  4. same window, more than half of it uncertain: `uncertain_action` with reason `uncertain`.
 *  Otherwise the window slides on. A frame that failed a quality gate adds no verdict.
 * Then, per step: a session whose first frame is more than session_timeout_ms old (a frame
 * captured after that instant is not counted) ends in retry with
 *  - `low_quality` (and the most frequent failing gate) if fewer than `frames` verdicts were
 *    inferred and at least as many frames failed a gate as were inferred,
 *  - else `uncertain` (uncertain_action) if more than half the verdicts were uncertain,
 *  - else `timeout` (quality was fine but the verdicts never settled, or too few frames came).
 * A lost track with an open session ends in retry `face_lost` (timeouts are checked first).
 * After a decision the track waits, by `redecide`:
 *  - 'cooldown': frames captured before decidedAt + cooldown_ms start no new session;
 *  - 'presence' (one decision per presence, issues 15 and 23): a presence is a person, not a
 *    spot. After an accept or a reject the person is held: their track starts no new session
 *    while they stay, until it is lost or releasePresence() is called (request/verify). Whenever
 *    a held track's face comes back after a gap of presence_gap_ms or more without a detection,
 *    or a new track starts where a held person's lost track was (IoU >= track_iou) within
 *    cooldown_ms of the loss, the face must match the held person's look (appearance.ts) to stay
 *    held; any other face (someone else stepped in, or no look) is a new presence and is decided.
 *    After a retry the track waits max(cooldown_ms, retry_interval_ms), so a person standing
 *    still, or a crowd, gets at most one retry per interval; but after a retry the person can fix
 *    (low_quality: face size, light, sharpness; multiple_faces), a new session starts as soon as
 *    every frame has passed (no gate failed, one face) for retry_settle_ms.
 * A lost track's cooldown and hold are dropped (the tracker never reuses ids).
 */
import { samePerson } from './appearance.js';
import { iou } from './tracker.js';
import type {
  Decision,
  DecisionConfig,
  DecisionReason,
  FixableRetry,
  FrameObservation,
  FusionInput,
  FusionState,
  HeldPresence,
  QualityGate,
  SessionDecision,
  TrackSession,
} from './types.js';

interface Outcome {
  decision: Decision;
  reason: DecisionReason;
  qualityGate?: QualityGate;
}

const GATE_ORDER: readonly QualityGate[] = ['face_size', 'brightness', 'sharpness'];

export function emptyFusionState(): FusionState {
  return { sessions: {}, cooldownUntil: {}, held: {}, left: {}, fixing: {} };
}

/**
 * request/verify: the people held on this camera (and those waiting out a retry interval) may
 * be decided again, by the same rules: releasing never decides anything by itself.
 */
export function releasePresence(state: FusionState, cameraId: string): FusionState {
  const mine = (key: string) => key.startsWith(`${cameraId}#`);
  const keep = <T>(r: Readonly<Record<string, T>>) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => !mine(k))) as Record<string, T>;
  return {
    sessions: state.sessions,
    cooldownUntil: keep(state.cooldownUntil),
    held: keep(state.held),
    left: keep(state.left),
    fixing: keep(state.fixing),
  };
}

export function trackKey(cameraId: string, trackId: number): string {
  return `${cameraId}#${trackId}`;
}

/** Live verdicts an accept needs: the configured min_live, and never less than a strict majority. */
export function requiredLive(cfg: Pick<DecisionConfig, 'frames' | 'min_live'>): number {
  return Math.max(cfg.min_live, Math.floor(cfg.frames / 2) + 1);
}

export function fuse(
  state: FusionState,
  input: FusionInput,
  cfg: DecisionConfig,
): { state: FusionState; decisions: SessionDecision[] } {
  const { nowMs, cameraId } = input;
  const sessions: Record<string, TrackSession> = { ...state.sessions };
  const cooldownUntil: Record<string, number> = { ...state.cooldownUntil };
  const held: Record<string, HeldPresence> = { ...state.held };
  const left: Record<string, HeldPresence & { until: number }> = { ...state.left };
  const fixing: Record<string, FixableRetry> = { ...state.fixing };
  const decisions: SessionDecision[] = [];
  const presence = cfg.redecide === 'presence';
  const close = (key: string, s: TrackSession, outcome: Outcome): void => {
    delete sessions[key];
    if (presence && outcome.decision !== 'retry') {
      held[key] = {
        decision: outcome.decision,
        box: s.lastBox,
        seenMono: s.lastFrameMono,
        look: s.lastLook,
        heldSinceMono: nowMs,
        presenceSinceMono: s.presenceSinceMono,
      };
    } else {
      cooldownUntil[key] =
        nowMs +
        (presence && outcome.decision === 'retry'
          ? Math.max(cfg.cooldown_ms, cfg.retry_interval_ms)
          : cfg.cooldown_ms);
      if (presence && FIXABLE.has(outcome.reason))
        fixing[key] = { presenceSinceMono: s.presenceSinceMono, okSinceMono: null };
    }
    decisions.push(toDecision(s, outcome, nowMs));
  };

  for (const obs of selectObservations(input.observations, cfg)) {
    const key = trackKey(cameraId, obs.trackId);
    const h = held[key];
    if (h !== undefined) {
      // Back after a gap: still the same person only if the face matches their look.
      const stays = obs.capturedMono - h.seenMono < cfg.presence_gap_ms || samePerson(h.look, obs.look);
      if (stays) {
        held[key] = { ...h, box: obs.box, seenMono: obs.capturedMono, look: obs.look ?? h.look };
        continue;
      }
      delete held[key]; // someone else stepped in: a new presence, decided from this frame on
    } else if (presence && !sessions[key] && cooldownUntil[key] === undefined) {
      // The same person back under a new track id (the old one was lost a moment ago, here)?
      const same = Object.entries(left).find(
        ([k, l]) =>
          k.startsWith(`${cameraId}#`) &&
          obs.capturedMono < l.until &&
          iou(l.box, obs.box) >= cfg.track_iou &&
          samePerson(l.look, obs.look),
      );
      if (same) {
        delete left[same[0]];
        const { until: _, ...was } = same[1];
        held[key] = { ...was, box: obs.box, seenMono: obs.capturedMono, look: obs.look ?? was.look };
        continue;
      }
    }
    let presenceSince = obs.capturedMono;
    const until = cooldownUntil[key];
    if (until !== undefined && obs.capturedMono < until) {
      const f = fixing[key];
      if (!f) continue;
      // After a fixable retry: decided again once the reason has been gone for retry_settle_ms.
      const ok = obs.qualityGate === null && !(cfg.multiple_faces === 'retry' && obs.facesInView > 1);
      const okSince = ok ? (f.okSinceMono ?? obs.capturedMono) : null;
      if (okSince === null || obs.capturedMono - okSince < cfg.retry_settle_ms) {
        fixing[key] = { ...f, okSinceMono: okSince };
        continue;
      }
      delete cooldownUntil[key];
      delete fixing[key];
      presenceSince = f.presenceSinceMono;
    }
    const open = sessions[key];
    if (open && obs.capturedMono - open.firstFrameMono > cfg.session_timeout_ms) {
      close(key, open, timeoutOutcome(open, cfg));
      continue;
    }
    const s = addFrame(open ?? newSession(cameraId, obs, presenceSince), obs, cfg);
    const crowded = cfg.multiple_faces === 'retry' && obs.facesInView > 1;
    const outcome: Outcome | null = crowded
      ? { decision: 'retry', reason: 'multiple_faces' }
      : obs.verdict === null
        ? null
        : verdictOutcome(s, cfg);
    if (outcome) close(key, s, outcome);
    else sessions[key] = s;
  }

  for (const key of Object.keys(sessions).sort()) {
    const s = sessions[key] as TrackSession;
    if (nowMs - s.firstFrameMono > cfg.session_timeout_ms) close(key, s, timeoutOutcome(s, cfg));
  }

  for (const trackId of input.lostTrackIds) {
    const key = trackKey(cameraId, trackId);
    const s = sessions[key];
    if (s) close(key, s, { decision: 'retry', reason: 'face_lost' });
    delete cooldownUntil[key];
    delete fixing[key];
    const h = held[key];
    if (h !== undefined) left[key] = { ...h, until: nowMs + cfg.cooldown_ms };
    delete held[key];
  }

  // Expired cooldowns are dropped so the state stays bounded by the tracks in view.
  for (const [key, until] of Object.entries(cooldownUntil)) if (until <= nowMs) delete cooldownUntil[key];
  for (const key of Object.keys(fixing)) if (cooldownUntil[key] === undefined) delete fixing[key];
  for (const [key, l] of Object.entries(left)) if (l.until <= nowMs) delete left[key];
  return { state: { sessions, cooldownUntil, held, left, fixing }, decisions };
}

/** Retries the person can fix by themselves: come closer, find light, hold still, step up alone. */
const FIXABLE: ReadonlySet<DecisionReason> = new Set(['low_quality', 'multiple_faces']);

function selectObservations(obs: FrameObservation[], cfg: DecisionConfig): FrameObservation[] {
  if (cfg.multiple_faces !== 'largest' || obs.length < 2) return obs;
  const area = (o: FrameObservation) => Math.max(0, o.box[2]) * Math.max(0, o.box[3]);
  let best = obs[0] as FrameObservation;
  for (const o of obs)
    if (area(o) > area(best) || (area(o) === area(best) && o.trackId < best.trackId)) best = o;
  return [best];
}

function newSession(cameraId: string, obs: FrameObservation, presenceSinceMono: number): TrackSession {
  return {
    cameraId,
    trackId: obs.trackId,
    firstFrameMono: obs.capturedMono,
    lastFrameMono: obs.capturedMono,
    seen: 0,
    gateFailures: { face_size: 0, sharpness: 0, brightness: 0 },
    window: [],
    live: 0,
    spoof: 0,
    uncertain: 0,
    scoreSums: {},
    scoreCounts: {},
    lastQuality: obs.quality,
    lastBox: obs.box,
    lastLook: obs.look ?? null,
    presenceSinceMono,
  };
}

function addFrame(s: TrackSession, obs: FrameObservation, cfg: DecisionConfig): TrackSession {
  const gateFailures = { ...s.gateFailures };
  if (obs.qualityGate) gateFailures[obs.qualityGate] += 1;
  const next = {
    ...s,
    lastFrameMono: Math.max(s.lastFrameMono, obs.capturedMono),
    seen: s.seen + 1,
    gateFailures,
    lastQuality: obs.quality,
    lastBox: obs.box,
    lastLook: obs.look ?? s.lastLook,
  };
  if (obs.verdict === null) return next;
  const scoreSums = { ...s.scoreSums };
  const scoreCounts = { ...s.scoreCounts };
  for (const [name, value] of Object.entries(obs.scores ?? {})) {
    if (!Number.isFinite(value)) continue;
    scoreSums[name] = (scoreSums[name] ?? 0) + value;
    scoreCounts[name] = (scoreCounts[name] ?? 0) + 1;
  }
  return {
    ...next,
    window: [...s.window, obs.verdict].slice(-cfg.frames),
    live: s.live + (obs.verdict === 'live' ? 1 : 0),
    spoof: s.spoof + (obs.verdict === 'spoof' ? 1 : 0),
    uncertain: s.uncertain + (obs.verdict === 'uncertain' ? 1 : 0),
    scoreSums,
    scoreCounts,
  };
}

/** Rules 2-4, after a frame with a verdict. */
function verdictOutcome(s: TrackSession, cfg: DecisionConfig): Outcome | null {
  if (s.spoof >= cfg.min_spoof) return { decision: 'reject', reason: 'spoof_detected' };
  if (s.window.length < cfg.frames) return null;
  const count = (v: string) => s.window.filter((w) => w === v).length;
  if (count('spoof') === 0 && count('live') >= requiredLive(cfg)) {
    return { decision: 'accept', reason: 'live_verified' };
  }
  if (count('uncertain') * 2 > s.window.length)
    return { decision: cfg.uncertain_action, reason: 'uncertain' };
  return null;
}

function timeoutOutcome(s: TrackSession, cfg: DecisionConfig): Outcome {
  const inferred = s.live + s.spoof + s.uncertain;
  const failed = GATE_ORDER.reduce((n, g) => n + s.gateFailures[g], 0);
  if (inferred < cfg.frames && failed > 0 && failed >= inferred) {
    // Most frequent failing gate; ties go to the earlier gate in GATE_ORDER.
    const gate = GATE_ORDER.reduce((a, b) => (s.gateFailures[b] > s.gateFailures[a] ? b : a));
    return { decision: 'retry', reason: 'low_quality', qualityGate: gate };
  }
  if (s.uncertain * 2 > inferred) return { decision: cfg.uncertain_action, reason: 'uncertain' };
  return { decision: 'retry', reason: 'timeout' };
}

function toDecision(s: TrackSession, o: Outcome, nowMs: number): SessionDecision {
  const scores: Record<string, number> = {};
  for (const [name, sum] of Object.entries(s.scoreSums)) scores[name] = sum / (s.scoreCounts[name] ?? 1);
  return {
    cameraId: s.cameraId,
    trackId: s.trackId,
    decision: o.decision,
    reason: o.reason,
    ...(o.qualityGate ? { qualityGate: o.qualityGate } : {}),
    frames: { seen: s.seen, inferred: s.live + s.spoof + s.uncertain, live: s.live, verified: s.live },
    scores,
    quality: s.lastQuality,
    firstFrameMono: s.firstFrameMono,
    lastFrameMono: s.lastFrameMono,
    decidedAtMono: nowMs,
    presenceSinceMono: s.presenceSinceMono,
  };
}
