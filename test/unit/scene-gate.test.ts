/**
 * The scene gate (daemon/pipeline/scene-gate.ts): an empty, still scene is detected only
 * idle_fps times a second; a change, a face or an open presence brings every frame back at
 * once. First the gate alone on generated frames, then the camera pipeline on a generated
 * "video" (an empty room with sensor noise, then a person) with a detector that finds the
 * person where the frame shows one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { configSchema } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import type { SessionDecision } from '../../daemon/decision/types.js';
import type { FaceDetection, FaceDetector } from '../../daemon/detect/types.js';
import type { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { CameraPipeline } from '../../daemon/pipeline/pipeline.js';
import { changedFraction, SceneGate, thumbnail } from '../../daemon/pipeline/scene-gate.js';
import { FakeCamera } from '../../drivers/camera/fake.js';

const W = 320;
const H = 240;
/** Where the "person" stands in the frames that show one. */
const PERSON: [number, number, number, number] = [110, 50, 100, 130];

/** Deterministic noise, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A 320x240 BGR frame: a grey wall (level 110) with +-6 levels of per-pixel sensor noise,
 * and, when `person`, a bright block (level 200) with its own noise where PERSON is.
 */
function frame(seed: number, person: boolean): Mat {
  const r = rng(seed);
  const buf = Buffer.alloc(W * H * 3);
  const [px, py, pw, ph] = PERSON;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const inPerson = person && x >= px && x < px + pw && y >= py && y < py + ph;
      const v = (inPerson ? 200 : 110) + Math.round((r() - 0.5) * 12);
      buf.fill(v, (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
  return new cv.Mat(buf, H, W, cv.CV_8UC3);
}

const gateCfg = configSchema.parse({}).scene_gate;

describe('scene gate', () => {
  it('is on by default, and a bad scene_gate setting is KIOSK_E_CONFIG_INVALID naming the key', () => {
    assert.deepEqual(
      { enabled: gateCfg.enabled, idle_fps: gateCfg.idle_fps },
      { enabled: true, idle_fps: 2 },
    );
    for (const [bad, key] of [
      [{ idle_fps: 0 }, 'scene_gate.idle_fps'],
      [{ pixel_delta: 300 }, 'scene_gate.pixel_delta'],
      [{ min_changed: 1.5 }, 'scene_gate.min_changed'],
      [{ idel_fps: 1 }, 'idel_fps'],
    ] as const) {
      assert.throws(
        () => validateConfig({ scene_gate: bad }, 'test'),
        (e: unknown) =>
          e instanceof KioskError && e.code === ErrorCodes.CONFIG_INVALID && e.message.includes(key),
        JSON.stringify(bad),
      );
    }
  });

  it('sensor noise alone is no change; a person stepping in is', () => {
    const a = thumbnail(frame(1, false), gateCfg.thumb_width);
    const b = thumbnail(frame(2, false), gateCfg.thumb_width);
    const c = thumbnail(frame(3, true), gateCfg.thumb_width);
    assert.deepEqual([a.cols, a.rows, a.channels], [80, 60, 1]);
    assert.ok(changedFraction(a, b, gateCfg.pixel_delta) <= gateCfg.min_changed, 'noise counted as a change');
    // The block covers about 17 % of the frame; all of it changed.
    assert.ok(changedFraction(a, c, gateCfg.pixel_delta) > 0.15);
  });

  it('a still scene is detected idle_fps times a second; a change and a face bring full rate back at once', () => {
    const gate = new SceneGate({ ...gateCfg, idle_fps: 2, hold_ms: 500 });
    const empty = frame(7, false);
    const person = frame(8, true);
    const reasons: string[] = [];
    // 3 s of an empty room at 30 fps.
    for (let i = 0; i < 90; i++) reasons.push(gate.admit(empty, i * (1000 / 30), false));
    const detected = reasons.filter((r) => r !== 'still');
    assert.deepEqual(detected, ['first', 'tick', 'tick', 'tick', 'tick', 'tick']);
    assert.equal(gate.counters.skipped, 84);
    // The person steps in: that very frame is detected, and so is every frame of the hold.
    const t = 3000;
    assert.equal(gate.admit(person, t, false), 'change');
    assert.equal(gate.admit(person, t + 100, false), 'hold');
    assert.equal(gate.admit(person, t + 499, false), 'hold');
    // The hold is over and nothing changed: back to the idle rate.
    assert.equal(gate.admit(person, t + 501, false), 'first');
    assert.equal(gate.admit(person, t + 600, false), 'still');
    // A face the detector returned holds full rate too, and an open presence does, however long.
    gate.faceSeen(t + 600);
    assert.equal(gate.admit(person, t + 700, false), 'hold');
    for (let s = 0; s < 10; s++) assert.equal(gate.admit(person, t + 2000 + s * 1000, true), 'presence');
    gate.close();
  });

  it('on an empty room then a person, the person is decided and no frame is skipped once a face was seen', async () => {
    const EMPTY = 80;
    const FRAMES = 130;
    const frames = Array.from({ length: FRAMES }, (_, i) => frame(100 + i, i >= EMPTY));
    const seqOf = new Map<Mat, number>();
    const detectedSeqs: number[] = [];
    const handled: number[] = [];
    const detector = {
      name: 'blazeface',
      inputWidth: 128,
      inputHeight: 128,
      provider: 'cpu',
      model: 'fake',
      detect: async (image: Mat): Promise<FaceDetection[]> => {
        detectedSeqs.push(seqOf.get(image) ?? -1);
        await new Promise((r) => setTimeout(r, 2));
        // The person is found where the frame shows one (the block's centre is bright).
        const centre = image.at(PERSON[1] + 60, PERSON[0] + 50) as unknown as { y: number };
        if (centre.y < 180) return [];
        const [x, y, w, h] = PERSON;
        return [
          {
            box: [x, y, w, h],
            landmarks: [
              [x + 30, y + 40],
              [x + 70, y + 40],
              [x + 50, y + 65],
              [x + 35, y + 90],
              [x + 65, y + 90],
            ],
            score: 0.95,
          },
        ];
      },
      close: async () => {},
    } satisfies FaceDetector;
    const liveness = {
      classify: async () => ({ verdict: 'live', scores: { p_live: 0.9 }, alignMs: 0, inferMs: 1 }),
    } as unknown as LivenessModel;
    const config = configSchema.parse({
      quality: { min_face_px: 5, min_sharpness: 0, min_brightness: 0, max_brightness: 1 },
      decision: { max_frame_age_ms: 60_000 },
    });
    const decisions: SessionDecision[] = [];
    const camera = new FakeCamera({
      // Pull mode: every frame reaches the pipeline, none is dropped, whatever the machine's load.
      intervalMs: null,
      count: FRAMES,
      // The detector gets the very Mat made here (BGR already): number it on the way out.
      images: (seq) => {
        const m = (frames[seq - 1] as Mat).copy();
        seqOf.set(m, seq);
        return m;
      },
    });
    const pipeline = new CameraPipeline({
      cameraId: 'gate',
      camera,
      detector,
      liveness,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      sceneGate: { ...config.scene_gate, idle_fps: 2, hold_ms: 200 },
      sink: {
        decision: (d) => {
          decisions.push(d);
        },
      },
      onFrame: ({ frame: f }) => {
        handled.push(f.seq);
      },
    });
    await pipeline.start();
    await pipeline.done();
    await pipeline.stop();
    assert.equal(handled.length, FRAMES, 'every frame reached the pipeline');
    // The empty room ran through in far less than a second: one look (the first frame), the rest skipped.
    const emptyLooks = detectedSeqs.filter((s) => s <= EMPTY);
    assert.ok(emptyLooks.length <= 3, `detections in the empty part: ${emptyLooks.join(',')}`);
    assert.ok((pipeline.gateCounters()?.skipped ?? 0) >= EMPTY - 3);
    assert.equal(pipeline.counters.gated, pipeline.gateCounters()?.skipped);
    // The change: the person's first frame is detected at once, and every frame after it.
    const personSeqs = Array.from({ length: FRAMES - EMPTY }, (_, i) => EMPTY + 1 + i);
    assert.deepEqual(
      detectedSeqs.filter((s) => s > EMPTY),
      personSeqs,
    );
    assert.equal(decisions[0]?.decision, 'accept', 'the person is decided');
    assert.ok(pipeline.presenceOpen(), 'the person is still held at the end');
  });
});
