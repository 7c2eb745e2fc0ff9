import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { emptyFusionState, fuse } from '../../daemon/decision/fusion.js';
import { GuidanceLimiter, guidanceFor, guidedPresence } from '../../daemon/decision/guidance.js';
import type { FrameObservation, FusionState, QualityGate } from '../../daemon/decision/types.js';

const cfg = configSchema.parse({});
const GOOD = { face_px: 150, sharpness: 0.5, brightness: 0.5 };

function obs(
  trackId: number,
  gate: QualityGate | null,
  extra: Partial<FrameObservation> = {},
): FrameObservation {
  return {
    trackId,
    box: [100, 100, 150, 150],
    capturedMono: 0,
    quality: GOOD,
    qualityGate: gate,
    verdict: gate ? null : 'live',
    scores: gate ? null : { p_real: 0.9 },
    facesInView: 1,
    look: Float32Array.of(0.1, 0.2, 0.3),
    ...extra,
  };
}

const say = (
  observations: FrameObservation[],
  state: FusionState = emptyFusionState(),
  faces = observations.length,
) => guidanceFor({ cameraId: 'front', facesInView: faces, observations, state }, cfg);

describe('guidance', () => {
  it('names what the person should do', () => {
    assert.equal(say([]), 'idle');
    assert.equal(
      guidanceFor(
        { cameraId: 'front', facesInView: 0, weakFaces: 1, observations: [], state: emptyFusionState() },
        cfg,
      ),
      'face_detected',
      'a face seen with low confidence is reported, not idle',
    );
    assert.equal(say([obs(1, null), obs(2, null)]), 'one_person');
    assert.equal(
      guidanceFor(
        { cameraId: 'front', facesInView: 2, observations: [obs(1, null)], state: emptyFusionState() },
        { ...cfg, decision: { ...cfg.decision, multiple_faces: 'largest' } },
      ),
      'face_detected',
      "with multiple_faces 'largest' a crowd is not told to split",
    );
    assert.equal(say([obs(1, 'face_size')]), 'move_closer');
    assert.equal(say([obs(1, 'brightness', { quality: { ...GOOD, brightness: 0.05 } })]), 'too_dark');
    assert.equal(say([obs(1, 'brightness', { quality: { ...GOOD, brightness: 0.97 } })]), 'too_bright');
    assert.equal(say([obs(1, 'sharpness')]), 'hold_still');
  });

  it('follows the fusion state: verifying while a session is open, decided while the person is held', () => {
    let state = emptyFusionState();
    const step = (t: number) => {
      const o = obs(1, null, { capturedMono: t });
      state = fuse(
        state,
        { nowMs: t, cameraId: 'front', observations: [o], lostTrackIds: [] },
        cfg.decision,
      ).state;
      return say([o], state);
    };
    assert.deepEqual([0, 100, 200, 300].map(step), ['verifying', 'verifying', 'verifying', 'verifying']);
    assert.equal(step(400), 'decided', 'the fifth live frame accepts; the person is held');
    assert.equal(step(5000), 'decided');
  });

  it('says when the guided presence began and since when it is held; the next person held is a change', () => {
    let state = emptyFusionState();
    const limiter = new GuidanceLimiter(500);
    const published: string[] = [];
    const step = (t: number, trackId: number, lost: number[] = [], look = Float32Array.of(0.1, 0.2, 0.3)) => {
      const observations = trackId ? [obs(trackId, null, { capturedMono: t, look })] : [];
      state = fuse(
        state,
        { nowMs: t, cameraId: 'front', observations, lostTrackIds: lost },
        cfg.decision,
      ).state;
      const input = { cameraId: 'front', facesInView: observations.length, observations, state };
      const p = guidedPresence(input);
      const g = guidanceFor(input, cfg);
      const say = limiter.offer(g, t, g === 'decided' ? `decided@${p.heldSinceMono}` : g);
      if (say) published.push(`${say}@${p.heldSinceMono ?? '-'}`);
      return p;
    };
    assert.deepEqual(step(0, 1), { presenceSinceMono: 0 });
    for (const t of [100, 200, 300]) step(t, 1);
    assert.deepEqual(step(400, 1), { presenceSinceMono: 0, heldSinceMono: 400 });
    step(500, 1);
    // Someone else on the same track after a 300 ms gap (a different look): decided and held
    // anew; their verifying frames fall inside the rate limit, so decided follows decided.
    const other = Float32Array.of(5, 0.2, 0.3);
    for (const t of [800, 850, 900, 950]) step(t, 1, [], other);
    assert.deepEqual(step(1000, 1, [], other), { presenceSinceMono: 800, heldSinceMono: 1000 });
    assert.deepEqual(published, ['verifying@-', 'decided@400', 'decided@1000']);
    assert.deepEqual(step(1800, 0, [1]), {});
  });

  it('the person nearest the camera (largest box) is the one guided', () => {
    const small = obs(1, 'face_size', { box: [0, 0, 40, 40] });
    const big = obs(2, 'sharpness', { box: [100, 100, 200, 200] });
    assert.equal(
      guidanceFor(
        { cameraId: 'front', facesInView: 2, observations: [small, big], state: emptyFusionState() },
        { ...cfg, decision: { ...cfg.decision, multiple_faces: 'largest' } },
      ),
      'hold_still',
    );
  });

  it('is published on change, at most once per interval, the newest state after it', () => {
    const l = new GuidanceLimiter(500);
    assert.equal(l.offer('idle', 0), 'idle');
    assert.equal(l.offer('idle', 100), null, 'no repeat');
    assert.equal(l.offer('verifying', 200), null, 'too soon');
    assert.equal(l.offer('move_closer', 300), null);
    assert.equal(l.offer('hold_still', 600), 'hold_still', 'the newest state once the interval passed');
    assert.equal(l.offer('hold_still', 2000), null);
    assert.equal(l.offer('decided', 2000), 'decided');
    assert.equal(l.current, 'decided');
  });
});
