/**
 * The look that tells the next person from the one who was there (appearance.ts), on the sample
 * video's two people (committed media, so this runs on a user's clone too): the same person in
 * frames seconds apart (the simulated camera pans, zooms, rolls, sways, blurs, drifts in light)
 * is the same; the two people are not; whatever cannot be described is never "the same".
 * Separation over many more faces is measured in bench/identity.md.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';
import {
  faceLook,
  type Look,
  lookDistance,
  SAME_PERSON_MAX_DISTANCE,
  samePerson,
} from '../../daemon/decision/appearance.js';
import { createDetector, type FaceDetector } from '../../daemon/detect/index.js';
import type { Landmarks5 } from '../../daemon/detect/types.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { repoRoot } from '../helpers/paths.js';

const ffmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

describe('appearance: same person or the next one', {
  skip: ffmpeg ? false : 'needs ffmpeg on PATH',
}, () => {
  let worker: InferenceWorker;
  let detector: FaceDetector;
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-look-'));
  const frames = new Map<number, Mat>();

  /** The sample video's frame at `s` seconds (media/README.md: Hopper 0-7 s, astronaut 9-16 s). */
  const frameAt = (s: number): Mat => {
    let m = frames.get(s);
    if (!m) {
      const out = path.join(dir, `f${s}.png`);
      const r = spawnSync('ffmpeg', [
        '-v',
        'error',
        '-y',
        '-ss',
        String(s),
        '-i',
        path.join(repoRoot, 'media/demo-kiosk.mp4'),
        '-frames:v',
        '1',
        out,
      ]);
      assert.equal(r.status, 0, r.stderr.toString());
      m = cv.imread(out);
      frames.set(s, m);
    }
    return m;
  };
  const lookAt = async (s: number): Promise<Look> => {
    const m = frameAt(s);
    const [face, ...more] = await detector.detect(m);
    assert.ok(face && more.length === 0, `one face at ${s} s`);
    const look = faceLook(m, face.landmarks);
    assert.ok(look, `a look at ${s} s`);
    return look;
  };

  before(async () => {
    const cfg = configSchema.parse({});
    worker = InferenceWorker.start();
    detector = await createDetector(worker, {
      name: cfg.detector.name,
      model: null,
      scoreThreshold: cfg.detector.score_threshold,
      nmsIou: cfg.detector.nms_iou,
      maxFaces: cfg.detector.max_faces,
      providers: ['cpu'],
      intraOpThreads: 1,
      repoRoot,
    });
  });

  after(async () => {
    await detector?.close();
    await worker?.close();
  });

  it('the same person seconds apart is the same; the other person is not', async () => {
    const hopper = await Promise.all([0.5, 3, 6.5].map(lookAt));
    const astronaut = await Promise.all([9.5, 12, 15.5].map(lookAt));
    for (const group of [hopper, astronaut])
      for (const a of group)
        for (const b of group) {
          assert.ok(samePerson(a, b), `same person: ${lookDistance(a, b)}`);
        }
    for (const a of hopper)
      for (const b of astronaut) {
        assert.ok(!samePerson(a, b), `different people: ${lookDistance(a, b)}`);
        assert.ok(lookDistance(a, b) > SAME_PERSON_MAX_DISTANCE);
      }
    assert.equal(lookDistance(hopper[0], hopper[0]), 0);
  });

  it('every doubt is "not the same": no look, a face too small, broken landmarks', async () => {
    const a = await lookAt(1);
    assert.equal(samePerson(a, null), false);
    assert.equal(samePerson(undefined, a), false);
    assert.equal(samePerson(null, null), false);
    assert.equal(lookDistance(a, a.subarray(1)), Number.POSITIVE_INFINITY);
    const viaJson = JSON.parse(JSON.stringify(a)) as Look;
    assert.equal(samePerson(viaJson, viaJson), false, 'a look that went through JSON never matches');
    const m = frameAt(1);
    const tiny: Landmarks5 = [
      [300, 200],
      [308, 200],
      [304, 205],
      [301, 209],
      [307, 209],
    ];
    assert.equal(faceLook(m, tiny), null, 'eyes 8 px apart: too small to describe');
    const broken = tiny.map(([x]) => [x * 10, Number.NaN]) as Landmarks5;
    assert.equal(faceLook(m, broken), null);
    const collapsed: Landmarks5 = [
      [100, 100],
      [200, 100],
      [150, 100],
      [150, 100],
      [150, 100],
    ];
    // Degenerate but describable points do not throw: a look or null, never an exception.
    const l = faceLook(m, collapsed);
    assert.ok(l === null || l.length === 1764);
  });
});
