import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { emptyFusionState, fuse, releasePresence, requiredLive } from '../../daemon/decision/fusion.js';
import type {
  DecisionConfig,
  FrameObservation,
  FrameVerdict,
  FusionState,
  QualityGate,
  SessionDecision,
} from '../../daemon/decision/types.js';

const defaults: DecisionConfig = configSchema.parse({}).decision;
/** The behaviour before one-decision-per-presence: a new session after every cooldown_ms. */
const cooldownMode: DecisionConfig = { ...defaults, redecide: 'cooldown' };
const GOOD = { face_px: 150, sharpness: 0.5, brightness: 0.5 };
/** Two people's looks (appearance.ts): far apart, as two different faces are. */
const LOOK_A = Float32Array.from({ length: 1764 }, (_, i) => (i % 2 ? 0.2 : 0));
const LOOK_B = Float32Array.from({ length: 1764 }, (_, i) => (i % 2 ? 0 : 0.2));

function obs(
  trackId: number,
  t: number,
  verdict: FrameVerdict | null,
  extra: Partial<FrameObservation> = {},
): FrameObservation {
  return {
    trackId,
    box: [100, 100, 150, 150],
    capturedMono: t,
    quality: GOOD,
    qualityGate: verdict === null ? 'sharpness' : null,
    verdict,
    scores: verdict === null ? null : { p_real: verdict === 'live' ? 0.9 : 0.2 },
    facesInView: 1,
    look: LOOK_A,
    ...extra,
  };
}

/** Held people by track key -> their decision. */
const heldDecisions = (st: FusionState) =>
  Object.fromEntries(Object.entries(st.held).map(([k, h]) => [k, h.decision]));

/** Drives the reducer like the pipeline does: one call per frame, time passed in. */
class Driver {
  state: FusionState = emptyFusionState();
  readonly decisions: SessionDecision[] = [];
  constructor(readonly cfg: DecisionConfig = defaults) {}
  step(nowMs: number, observations: FrameObservation[], lostTrackIds: number[] = []): SessionDecision[] {
    const before = JSON.stringify(this.state);
    const out = fuse(this.state, { nowMs, cameraId: 'front', observations, lostTrackIds }, this.cfg);
    assert.equal(JSON.stringify(this.state), before, 'fuse must not mutate its input state');
    this.state = out.state;
    this.decisions.push(...out.decisions);
    return out.decisions;
  }
  /** One frame per 100 ms for track 1 with these verdicts; returns the decisions of each step. */
  run(verdicts: (FrameVerdict | null)[], start = 0): SessionDecision[][] {
    return verdicts.map((v, i) => this.step(start + i * 100, [obs(1, start + i * 100, v)]));
  }
}

const V = (s: string): FrameVerdict[] =>
  [...s].map((c) => ({ L: 'live', S: 'spoof', U: 'uncertain' })[c] as FrameVerdict);

describe('fuse: fixed scenarios (default config: 4 live of 5, 3 spoofs reject)', () => {
  it('accepts after `frames` live frames, once, with mean scores and frame counts', () => {
    const d = new Driver();
    const steps = d.run(V('LLLLL'));
    assert.deepEqual(steps.slice(0, 4).flat(), [], 'no decision before the window is full');
    assert.equal(d.decisions.length, 1);
    const [dec] = d.decisions;
    assert.equal(dec?.decision, 'accept');
    assert.equal(dec?.reason, 'live_verified');
    assert.equal(dec?.qualityGate, undefined);
    assert.deepEqual(dec?.frames, { seen: 5, inferred: 5, live: 5, verified: 5 });
    assert.ok(Math.abs((dec?.scores.p_real ?? 0) - 0.9) < 1e-12);
    assert.deepEqual([dec?.firstFrameMono, dec?.lastFrameMono, dec?.decidedAtMono], [0, 400, 400]);
  });

  it('tolerates one uncertain frame with min_live 4 but counts it only as seen', () => {
    const d = new Driver();
    d.run(V('LLULL'));
    assert.equal(d.decisions[0]?.decision, 'accept');
    assert.deepEqual(d.decisions[0]?.frames, { seen: 5, inferred: 5, live: 4, verified: 4 });
  });

  it('does not count quality-failed frames toward the window', () => {
    const d = new Driver();
    d.run(['live', null, 'live', null, 'live', 'live']);
    assert.equal(d.decisions.length, 0);
    d.step(600, [obs(1, 600, 'live')]);
    assert.equal(d.decisions[0]?.decision, 'accept');
    assert.deepEqual(d.decisions[0]?.frames, { seen: 7, inferred: 5, live: 5, verified: 5 });
  });

  it('rejects as soon as min_spoof spoof frames were seen', () => {
    const d = new Driver();
    const steps = d.run(V('SSS'));
    assert.deepEqual(steps[1], []);
    assert.equal(steps[2]?.[0]?.decision, 'reject');
    assert.equal(steps[2]?.[0]?.reason, 'spoof_detected');
  });

  it('keeps a spoof frame blocking accept until it leaves the window', () => {
    const d = new Driver();
    const steps = d.run(V('LLLLSLLLLL'));
    assert.deepEqual(steps.slice(0, 9).flat(), [], 'every window of frames 5..9 holds the spoof');
    assert.equal(steps[9]?.[0]?.decision, 'accept');
    assert.deepEqual(steps[9]?.[0]?.frames, { seen: 10, inferred: 10, live: 9, verified: 9 });
  });

  it('turns an uncertain majority into uncertain_action, never accept', () => {
    const retry = new Driver();
    retry.run(V('UUULL'));
    assert.deepEqual(
      retry.decisions.map((x) => [x.decision, x.reason]),
      [['retry', 'uncertain']],
    );
    const reject = new Driver({ ...defaults, uncertain_action: 'reject' });
    reject.run(V('UUUUU'));
    assert.deepEqual(
      reject.decisions.map((x) => [x.decision, x.reason]),
      [['reject', 'uncertain']],
    );
  });

  it('times out on low quality with the most frequent failing gate', () => {
    const d = new Driver();
    const gates: QualityGate[] = ['brightness', 'sharpness', 'sharpness', 'face_size', 'sharpness'];
    for (let t = 0, i = 0; t <= 4000; t += 250, i++) {
      const live = i % 4 === 3;
      const gate = gates[i % gates.length] as QualityGate;
      d.step(t, [obs(1, t, live ? 'live' : null, { qualityGate: live ? null : gate })]);
    }
    assert.equal(d.decisions.length, 0, 'the deadline is first frame + session_timeout_ms, inclusive');
    d.step(4001, []);
    const [dec] = d.decisions;
    assert.deepEqual([dec?.decision, dec?.reason, dec?.qualityGate], ['retry', 'low_quality', 'sharpness']);
    assert.equal(dec?.frames.seen, 17);
    assert.equal(dec?.decidedAtMono, 4001);
  });

  it('times out with reason timeout when quality was fine but the verdicts never settled', () => {
    const d = new Driver();
    // One spoof in every 5 frames: never a clean window, never 3 spoofs within 4 s.
    for (let i = 0, t = 0; t <= 4000; i++, t += 500) d.step(t, [obs(1, t, i % 5 === 0 ? 'spoof' : 'live')]);
    assert.equal(d.decisions.length, 0);
    d.step(4200, []);
    assert.deepEqual(
      d.decisions.map((x) => [x.decision, x.reason]),
      [['retry', 'timeout']],
    );
  });

  it('does not count a frame captured after the session deadline', () => {
    const d = new Driver();
    d.run(V('LLLL'));
    d.step(4150, [obs(1, 4101, 'live')]);
    assert.deepEqual(
      d.decisions.map((x) => [x.decision, x.reason, x.frames.seen, x.lastFrameMono]),
      [['retry', 'timeout', 4, 300]],
    );
  });

  it('ends a session whose track was lost in retry face_lost', () => {
    const d = new Driver();
    d.run(V('LL'));
    d.step(900, [], [1]);
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.decision, x.reason, x.frames.seen]),
      [[1, 'retry', 'face_lost', 2]],
    );
    assert.deepEqual(d.state, emptyFusionState());
    d.step(1000, [], [7]);
    assert.equal(d.decisions.length, 1, 'a lost track without a session decides nothing');
  });

  it('sends multiple_faces once per session and cools both tracks down', () => {
    const d = new Driver(cooldownMode);
    const crowd = (t: number) => [
      obs(1, t, 'live', { facesInView: 2 }),
      obs(2, t, 'live', { facesInView: 2, box: [400, 100, 120, 120] }),
    ];
    assert.deepEqual(
      d.step(0, crowd(0)).map((x) => [x.trackId, x.decision, x.reason]),
      [
        [1, 'retry', 'multiple_faces'],
        [2, 'retry', 'multiple_faces'],
      ],
    );
    for (let t = 100; t < 3000; t += 100) assert.deepEqual(d.step(t, crowd(t)), [], `cooldown at ${t}`);
    // Track 2 leaves; track 1 alone starts a fresh session after the cooldown.
    d.step(3000, [], [2]);
    const later = d.run(V('LLLLL'), 3000).flat();
    assert.deepEqual(
      later.map((x) => [x.trackId, x.decision, x.firstFrameMono]),
      [[1, 'accept', 3000]],
    );
  });

  it("with multiple_faces 'largest' decides on the largest face only", () => {
    const d = new Driver({ ...defaults, multiple_faces: 'largest' });
    for (let t = 0; t <= 400; t += 100) {
      d.step(t, [
        obs(1, t, 'spoof', { facesInView: 2, box: [0, 0, 60, 60] }),
        obs(2, t, 'live', { facesInView: 2, box: [200, 0, 160, 160] }),
      ]);
    }
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.decision]),
      [[2, 'accept']],
    );
    assert.deepEqual(Object.keys(d.state.sessions), [], 'no session for the small face');
  });

  it("redecide 'cooldown': no new session on a decided track until cooldown_ms has passed", () => {
    const d = new Driver(cooldownMode);
    d.run(V('LLLLL'));
    const during = d.run(V('LLLLLLLLLLLLLLLLLLLLLLLLLLLLLL'), 500).flat();
    assert.deepEqual(during, [], 'frames captured in [400, 3400) are ignored');
    const after = d.run(V('LLLLL'), 3400).flat();
    assert.deepEqual(
      after.map((x) => [x.decision, x.firstFrameMono, x.frames.seen]),
      [['accept', 3400, 5]],
    );
  });

  it('drops the cooldown of a lost track and expired cooldowns from the state', () => {
    const d = new Driver(cooldownMode);
    d.run(V('LLLLL'));
    assert.deepEqual(Object.keys(d.state.cooldownUntil), ['front#1']);
    d.step(500, [], [1]);
    assert.deepEqual(d.state, emptyFusionState());
    d.run(V('SSS'), 600);
    d.step(3900, []);
    assert.deepEqual(d.state, emptyFusionState(), 'cooldown until 800 + 3000 has expired');
  });
});

describe('fuse: one decision per presence (the default)', () => {
  it('a person standing still for 40 s gets one accept, and a new one only after leaving', () => {
    const d = new Driver();
    const still = Array.from({ length: 400 }, () => 'L').join('');
    assert.deepEqual(
      d
        .run(V(still))
        .flat()
        .map((x) => [x.decision, x.firstFrameMono]),
      [['accept', 0]],
    );
    assert.deepEqual(heldDecisions(d.state), { 'front#1': 'accept' });
    // With today's behaviour the same 40 s give one accept per cooldown.
    const old = new Driver(cooldownMode);
    assert.equal(old.run(V(still)).flat().length, 12);
    d.step(40_000, [], [1]);
    assert.deepEqual(d.state.held, {}, 'the hold ends with the track');
    // A new track where the person stood, right after the loss: the same person (a missed
    // detection split the track), still held: no second decision.
    for (let t = 40_100; t <= 41_000; t += 100) assert.deepEqual(d.step(t, [obs(2, t, 'live')]), []);
    assert.deepEqual(heldDecisions(d.state), { 'front#2': 'accept' });
    // Gone for longer than cooldown_ms: whoever stands there next is a new presence.
    d.step(41_100, [], [2]);
    d.step(44_200, []);
    assert.deepEqual(d.state, emptyFusionState(), 'nothing is kept once the person has left');
    for (let t = 44_300; t <= 44_700; t += 100) d.step(t, [obs(3, t, 'live')]);
    // Someone else, elsewhere, during another person's grace: decided as usual.
    d.step(44_800, [], [3]);
    for (let t = 44_900; t <= 45_300; t += 100) d.step(t, [obs(4, t, 'live', { box: [400, 100, 150, 150] })]);
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.decision]),
      [
        [1, 'accept'],
        [3, 'accept'],
        [4, 'accept'],
      ],
    );
  });

  it('a reject is held too: an attacker in view gets no second chance by waiting', () => {
    const d = new Driver();
    d.run(V('SSS'));
    assert.deepEqual(d.run(V('LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL'), 300).flat(), []);
    assert.deepEqual(
      d.decisions.map((x) => x.decision),
      ['reject'],
    );
  });

  it('three people in view for 20 s: one multiple_faces retry per person per retry_interval_ms', () => {
    const crowd = (t: number) =>
      [1, 2, 3].map((id) => obs(id, t, 'live', { facesInView: 3, box: [id * 200, 100, 120, 120] }));
    const count = (cfg: DecisionConfig) => {
      const d = new Driver(cfg);
      for (let t = 0; t < 20_000; t += 100) d.step(t, crowd(t));
      assert.ok(d.decisions.every((x) => x.reason === 'multiple_faces'));
      return d.decisions.length;
    };
    assert.equal(count(defaults), 6, 'retry_interval_ms 10000: at 0 s and 10 s, per person');
    assert.equal(count(cooldownMode), 21, 'the old behaviour: every 3 s per person');
  });

  it('releasePresence (request/verify) lets a held person be decided again by the same rules', () => {
    const d = new Driver();
    d.run(V('LLLLL'));
    d.run(V('LLLLL'), 500);
    assert.equal(d.decisions.length, 1);
    d.state = releasePresence(d.state, 'other-camera');
    assert.deepEqual(heldDecisions(d.state), { 'front#1': 'accept' }, 'another camera is not touched');
    d.state = releasePresence(d.state, 'front');
    assert.deepEqual(d.state.held, {});
    // Released, the person must still show a full window: four frames decide nothing.
    assert.deepEqual(d.run(V('LLLL'), 1000).flat(), []);
    // Spoof frames after a release reject; a release never turns into an accept by itself.
    assert.deepEqual(
      d
        .run(V('SSS'), 1400)
        .flat()
        .map((x) => x.decision),
      ['reject'],
    );
  });
});

describe('fuse: a presence is a person, not a spot (issue 23)', () => {
  /** Person `look` at track `id` from t0 for `n` frames, 100 ms apart, live. */
  const stand = (d: Driver, id: number, t0: number, n: number, look: Float32Array | null) => {
    for (let i = 0; i < n; i++) d.step(t0 + i * 100, [obs(id, t0 + i * 100, 'live', { look })]);
  };

  it('the next person in the spot of a lost, held one is decided; the same person back is not', () => {
    const d = new Driver();
    stand(d, 1, 0, 10, LOOK_A);
    d.step(1700, [], [1]); // track lost (0.7 s after the last frame)
    stand(d, 2, 1800, 10, LOOK_B); // someone else, 0.8 s after the first left
    d.step(3500, [], [2]);
    stand(d, 3, 3600, 10, LOOK_B); // the second person back after 0.8 s: held
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.decision, x.firstFrameMono, x.presenceSinceMono]),
      [
        [1, 'accept', 0, 0],
        [2, 'accept', 1800, 1800],
      ],
    );
    assert.deepEqual(heldDecisions(d.state), { 'front#3': 'accept' });
    assert.equal(d.state.held['front#3']?.heldSinceMono, 2200, 'the hold carries over, from the decision');
  });

  it('a face that cannot be described is never taken for the person held there (fail safe)', () => {
    const d = new Driver();
    stand(d, 1, 0, 10, LOOK_A);
    d.step(1700, [], [1]);
    stand(d, 2, 1800, 10, null);
    assert.deepEqual(
      d.decisions.map((x) => x.trackId),
      [1, 2],
    );
  });

  it('a held track whose face comes back after presence_gap_ms must match the look', () => {
    const d = new Driver();
    stand(d, 1, 0, 10, LOOK_A);
    // Detector gaps shorter than presence_gap_ms: nothing is compared, even with no look.
    d.step(1100, [obs(1, 1100, 'live', { look: null })]);
    // The same person after a 300 ms gap (the tracker kept the track): held.
    stand(d, 1, 1400, 3, LOOK_A);
    assert.equal(d.decisions.length, 1);
    // Someone else after a 300 ms gap on the same track: a new presence, decided.
    stand(d, 1, 1900, 6, LOOK_B);
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.decision, x.firstFrameMono]),
      [
        [1, 'accept', 0],
        [1, 'accept', 1900],
      ],
    );
    // The look is followed while the track continues: the new person stays held after a gap.
    stand(d, 1, 2800, 10, LOOK_B);
    assert.equal(d.decisions.length, 2);
  });

  it('after a fixable retry the person is decided again once fixed for retry_settle_ms', () => {
    const d = new Driver();
    const small = (t: number) => obs(1, t, null, { qualityGate: 'face_size' });
    for (let t = 0; t <= 4100; t += 100) d.step(t, [small(t)]);
    assert.deepEqual(
      d.decisions.map((x) => [x.decision, x.reason, x.qualityGate]),
      [['retry', 'low_quality', 'face_size']],
    );
    assert.ok(d.state.fixing['front#1'], 'waiting for the person to fix it');
    // Steps closer, but flickers back once: the settle time restarts.
    d.step(4200, [obs(1, 4200, 'live')]);
    d.step(4300, [obs(1, 4300, 'live')]);
    d.step(4400, [small(4400)]);
    for (let t = 4500; t <= 4900; t += 100) d.step(t, [obs(1, t, 'live')]);
    assert.equal(d.decisions.length, 1, 'not yet: fixed for 400 ms only');
    for (let t = 5000; t <= 5400; t += 100) d.step(t, [obs(1, t, 'live')]);
    assert.deepEqual(
      d.decisions.map((x) => [x.decision, x.firstFrameMono, x.presenceSinceMono]),
      [
        ['retry', 0, 0],
        ['accept', 5000, 0],
      ],
      'a new session from the first frame after the settle time; the presence began at the retry',
    );
    assert.deepEqual(heldDecisions(d.state), { 'front#1': 'accept' });
    assert.deepEqual(d.state.fixing, {});
  });

  it('one person left of a crowd is decided after retry_settle_ms; a timeout waits the retry interval', () => {
    const d = new Driver();
    d.step(0, [
      obs(1, 0, 'live', { facesInView: 2 }),
      obs(2, 0, 'live', { facesInView: 2, box: [400, 100, 150, 150] }),
    ]);
    d.step(100, [], [2]);
    for (let t = 100; t <= 1100; t += 100) d.step(t, [obs(1, t, 'live')]);
    assert.deepEqual(
      d.decisions.map((x) => [x.trackId, x.reason]),
      [
        [1, 'multiple_faces'],
        [2, 'multiple_faces'],
        [1, 'live_verified'],
      ],
    );
    // uncertain is not the person's to fix: the retry interval applies.
    const u = new Driver();
    u.run(V('UUUUU'));
    assert.deepEqual(u.run(V('LLLLLLLLLLLLLLLLLLLL'), 500).flat(), []);
    assert.deepEqual(u.state.fixing, {});
  });

  it("redecide 'cooldown' keeps its rule: no looks, no fixing", () => {
    const d = new Driver(cooldownMode);
    for (let t = 0; t <= 4100; t += 100) d.step(t, [obs(1, t, null, { qualityGate: 'face_size' })]);
    assert.deepEqual(d.state.fixing, {});
  });
});

/** mulberry32: a small seeded PRNG so property failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Run {
  cfg: DecisionConfig;
  decisions: SessionDecision[];
  /** Frames the fuser was given and would fuse (after 'largest' selection), per track. */
  frames: Map<number, FrameObservation[]>;
  final: FusionState;
}

/** A random run: 1-3 faces coming and going, random verdicts, gates, gaps, config. */
function randomRun(seed: number, verdictPool: (FrameVerdict | null)[]): Run {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const framesN = 1 + Math.floor(rnd() * 7);
  const cfg: DecisionConfig = {
    ...defaults,
    frames: framesN,
    min_live: 1 + Math.floor(rnd() * framesN),
    min_spoof: 1 + Math.floor(rnd() * 5),
    session_timeout_ms: pick([500, 1500, 4000]),
    cooldown_ms: pick([0, 300, 3000]),
    multiple_faces: pick(['retry', 'largest'] as const),
    uncertain_action: pick(['retry', 'reject'] as const),
    redecide: pick(['presence', 'cooldown'] as const),
    retry_interval_ms: pick([0, 1000, 10_000]),
  };
  let state = emptyFusionState();
  const decisions: SessionDecision[] = [];
  const frames = new Map<number, FrameObservation[]>();
  const present: number[] = [1];
  let nextId = 2;
  let t = 0;
  for (let step = 0; step < 300; step++) {
    t += pick([33, 100, 250, 900]);
    const lost: number[] = [];
    if (rnd() < 0.05) lost.push(...present.splice(0, 1));
    if (present.length < 3 && rnd() < 0.08) present.push(nextId++);
    const observations = present.map((id) => {
      const v = pick(verdictPool);
      const side = 60 + Math.floor(rnd() * 200);
      return obs(id, t, v, {
        box: [id * 300, 0, side, side],
        qualityGate: v === null ? pick(['face_size', 'sharpness', 'brightness'] as const) : null,
        scores: v === null ? null : { p_real: rnd() },
        facesInView: present.length,
      });
    });
    // Now and then a client asks for a decision now (request/verify).
    if (rnd() < 0.02) state = releasePresence(state, 'front');
    const out = fuse(
      state,
      { nowMs: t + Math.floor(rnd() * 40), cameraId: 'front', observations, lostTrackIds: lost },
      cfg,
    );
    const used =
      cfg.multiple_faces === 'largest' && observations.length > 1
        ? [observations.reduce((a, b) => (b.box[2] > a.box[2] ? b : a))]
        : observations;
    for (const o of used) frames.set(o.trackId, [...(frames.get(o.trackId) ?? []), o]);
    state = out.state;
    decisions.push(...out.decisions);
  }
  // Everyone leaves: every open session must end now.
  const end = fuse(state, { nowMs: t + 1, cameraId: 'front', observations: [], lostTrackIds: present }, cfg);
  decisions.push(...end.decisions);
  return { cfg, decisions, frames, final: end.state };
}

/** The frames a decision covered: its track's frames between its first and last frame. */
function sessionFrames(run: Run, d: SessionDecision): FrameObservation[] {
  return (run.frames.get(d.trackId) ?? []).filter(
    (f) => f.capturedMono >= d.firstFrameMono && f.capturedMono <= d.lastFrameMono,
  );
}

const inferred = (fs: FrameObservation[]) => fs.flatMap((f) => (f.verdict ? [f.verdict] : []));
const SEEDS = Array.from({ length: 300 }, (_, i) => 1000 + i);

describe('fuse: properties over 300 seeded random runs', () => {
  it('uncertain never becomes accept', () => {
    for (const seed of SEEDS) {
      const run = randomRun(seed, ['uncertain', 'uncertain', null]);
      assert.ok(run.decisions.length > 0, `seed ${seed} decided nothing`);
      assert.ok(!run.decisions.some((d) => d.decision === 'accept'), `seed ${seed}`);
    }
  });

  it('every accept rests on a full window: no spoof, a live majority, min_live live', () => {
    let accepts = 0;
    for (const seed of SEEDS) {
      const run = randomRun(seed, ['live', 'live', 'live', 'live', 'spoof', 'uncertain', null]);
      for (const d of run.decisions.filter((x) => x.decision === 'accept')) {
        accepts++;
        const window = inferred(sessionFrames(run, d)).slice(-run.cfg.frames);
        const live = window.filter((v) => v === 'live').length;
        const why = `seed ${seed}, window ${window.join(',')}`;
        assert.equal(window.length, run.cfg.frames, why);
        assert.ok(!window.includes('spoof'), why);
        assert.ok(live >= run.cfg.min_live && live * 2 > run.cfg.frames, why);
        assert.equal(d.reason, 'live_verified');
      }
    }
    assert.ok(accepts > 100, `only ${accepts} accepts: the property was barely exercised`);
  });

  it('a single spoof-free live frame never accepts when frames > 1', () => {
    for (const seed of SEEDS) {
      const run = randomRun(seed, ['live', 'uncertain', 'uncertain', null, null]);
      for (const d of run.decisions.filter((x) => x.decision === 'accept')) {
        const live = inferred(sessionFrames(run, d)).filter((v) => v === 'live').length;
        assert.ok(run.cfg.frames === 1 || live >= 2, `seed ${seed}: accept on ${live} live frame(s)`);
      }
    }
    const d = new Driver({ ...defaults, frames: 2, min_live: 1 });
    d.run(V('UL'));
    assert.equal(d.decisions.length, 0, 'min_live 1 of 2 still needs a live majority: 2 live');
    d.step(200, [obs(1, 200, 'live')]);
    assert.deepEqual(
      d.decisions.map((x) => [x.decision, x.frames.verified]),
      [['accept', 2]],
    );
  });

  it('every session ends in exactly one decision', () => {
    for (const seed of SEEDS) {
      const run = randomRun(seed, ['live', 'spoof', 'uncertain', null]);
      assert.deepEqual(run.final.sessions, {}, `seed ${seed}: sessions left open`);
      for (const [trackId, fs] of run.frames) {
        const ds = run.decisions.filter((d) => d.trackId === trackId);
        for (const d of ds) {
          assert.equal(d.frames.seen, sessionFrames(run, d).length, `seed ${seed}: seen count`);
          assert.equal((d.qualityGate !== undefined) === (d.reason === 'low_quality'), true, `seed ${seed}`);
        }
        // Each frame was counted by exactly one decision, or fell into a cooldown (or past a deadline).
        for (const f of fs) {
          const covering = ds.filter(
            (d) => f.capturedMono >= d.firstFrameMono && f.capturedMono <= d.lastFrameMono,
          );
          if (covering.length === 1) continue;
          assert.equal(covering.length, 0, `seed ${seed}: frame at ${f.capturedMono} in two sessions`);
          const presence = run.cfg.redecide === 'presence';
          const wait = (d: SessionDecision) =>
            presence && d.decision === 'retry'
              ? Math.max(run.cfg.cooldown_ms, run.cfg.retry_interval_ms)
              : run.cfg.cooldown_ms;
          const excused = ds.some(
            (d) =>
              f.capturedMono > d.lastFrameMono &&
              (f.capturedMono <= d.decidedAtMono ||
                (presence && d.decision !== 'retry') ||
                f.capturedMono < d.decidedAtMono + wait(d)),
          );
          assert.ok(
            excused,
            `seed ${seed}: track ${trackId} frame at ${f.capturedMono} ended in no decision`,
          );
        }
      }
    }
  });

  it('requiredLive is never below a strict majority', () => {
    for (let frames = 1; frames <= 9; frames++) {
      for (let minLive = 1; minLive <= frames; minLive++) {
        const r = requiredLive({ frames, min_live: minLive });
        assert.ok(r >= minLive && r * 2 > frames, `${minLive} of ${frames} -> ${r}`);
      }
    }
  });
});
