/**
 * Both detectors on real images (../shared/data) and on images composed from them: one face per
 * portrait, plausible landmarks, nothing on a blank frame, grey/BGRA/4K inputs mapped back to
 * original pixels, two faces side by side, and a tiny face that must not crash.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cv, type Mat } from '../../core/cv.js';
import { createDetector, defaultDetectorModel } from '../../daemon/detect/index.js';
import { iou } from '../../daemon/detect/nms.js';
import type { DetectorName, FaceDetection, FaceDetector } from '../../daemon/detect/types.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { needsSharedData, repoRoot, shared } from '../helpers/paths.js';

const PORTRAITS = ['hopper.jpg', 'astronaut.png', 'T1.jpg', 'F1.jpg', 'F2.jpg'];

/** BlazeFace from models/blazeface (npm), YuNet read in place from ../shared/data/models. */
const detectorModel = (name: DetectorName) =>
  name === 'yunet' ? shared('models/yunet_s_640_640.onnx') : defaultDetectorModel(name, repoRoot);

function needsModel(name: DetectorName): false | string {
  const data = needsSharedData(...PORTRAITS.map((p) => `images/${p}`), 'models/yunet_s_640_640.onnx');
  if (data) return data;
  const model = detectorModel(name);
  return existsSync(model) ? false : `needs ${model}, which is absent (run scripts/fetch-blazeface.sh)`;
}

// T1/F1/F2 carry a stale EXIF orientation tag on pixels that are already upright: imread must ignore it.
const image = (name: string): Mat =>
  cv.imread(shared(`images/${name}`), cv.IMREAD_COLOR | cv.IMREAD_IGNORE_ORIENTATION);
const fmt = (d: FaceDetection) =>
  `score ${d.score.toFixed(3)} box [${d.box.map((v) => Math.round(v)).join(', ')}]`;

/** A canvas of one colour with `src` resized to `size` px wide pasted at (x, y). */
function paste(canvas: Mat, src: Mat, x: number, y: number, size: number): Mat {
  const scaled = src.resize(Math.round((src.rows * size) / src.cols), size);
  scaled.copyTo(canvas.getRegion(new cv.Rect(x, y, scaled.cols, scaled.rows)));
  return canvas;
}
// From a Buffer: the binding's fill-value constructor takes seconds at 4K.
const solid = (w: number, h: number, v: number) => new cv.Mat(Buffer.alloc(w * h * 3, v), h, w, cv.CV_8UC3);
const grey = (w: number, h: number) => solid(w, h, 128);

function assertPlausible(d: FaceDetection, w: number, h: number): void {
  const [re, le, nose, rm, lm] = d.landmarks;
  assert.ok(re[0] < le[0], `right eye image-left of left eye: ${re} / ${le}`);
  const eyeY = (re[1] + le[1]) / 2;
  assert.ok(eyeY < nose[1], `eyes (${eyeY}) above nose (${nose[1]})`);
  assert.ok(nose[1] < (rm[1] + lm[1]) / 2, `nose above mouth: ${nose} / ${rm} ${lm}`);
  // Not "nose between the mouth corners": on a turned head (T1) YuNet puts the nose tip past one.
  assert.ok(rm[0] < lm[0], `right mouth corner image-left of the left one: ${rm} / ${lm}`);
  const [x, y, bw, bh] = d.box;
  assert.ok(x >= 0 && y >= 0 && x + bw <= w && y + bh <= h, `box inside the image: ${d.box}`);
  for (const p of [re, le, nose]) {
    assert.ok(p[0] > x && p[0] < x + bw && p[1] > y && p[1] < y + bh, `${p} inside box ${d.box}`);
  }
}

const centre = (d: FaceDetection): [number, number] => [d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2];

for (const name of ['blazeface', 'yunet'] as const) {
  describe(`${name} on real images`, { skip: needsModel(name) }, () => {
    let worker: InferenceWorker;
    let detector: FaceDetector;
    let hopperBox: FaceDetection['box'];

    before(async () => {
      worker = InferenceWorker.start();
      detector = await createDetector(worker, {
        name,
        model: detectorModel(name),
        scoreThreshold: 0.6,
        nmsIou: 0.3,
        maxFaces: 10,
        providers: ['cpu'],
        intraOpThreads: 1,
        repoRoot,
      });
      // Reference box for the composed images below (the hopper test checks it on its own).
      const ref = await detector.detect(image('hopper.jpg'));
      hopperBox = ref[0]?.box ?? [0, 0, 0, 0];
    });
    after(async () => {
      await detector?.close();
      await worker?.close();
    });

    for (const file of PORTRAITS) {
      it(`finds exactly one face with plausible landmarks in ${file}`, async (t) => {
        const img = image(file);
        const faces = await detector.detect(img);
        t.diagnostic(`${file}: ${faces.map(fmt).join('; ')}`);
        assert.equal(faces.length, 1, `faces: ${faces.map(fmt).join('; ')}`);
        assertPlausible(faces[0] as FaceDetection, img.cols, img.rows);
      });
    }

    it('finds nothing in blank frames', async () => {
      assert.deepEqual(await detector.detect(grey(640, 480)), []);
      assert.deepEqual(await detector.detect(solid(640, 480, 0)), []);
    });

    it('takes grey (1-channel) and BGRA input', async () => {
      const hopper = image('hopper.jpg');
      for (const code of [cv.COLOR_BGR2GRAY, cv.COLOR_BGR2BGRA]) {
        const faces = await detector.detect(hopper.cvtColor(code));
        assert.equal(faces.length, 1);
        assert.ok(
          iou(faces[0]?.box ?? [0, 0, 0, 0], hopperBox) > 0.8,
          `box ${faces[0]?.box} vs colour ${hopperBox}`,
        );
      }
    });

    it('takes a ROI view of exactly the network size (no resize path)', async () => {
      const [w, h] = [detector.inputWidth, detector.inputHeight];
      const canvas = paste(grey(w + 100, h + 100), image('hopper.jpg'), 50, 50, Math.min(w, h));
      const faces = await detector.detect(canvas.getRegion(new cv.Rect(50, 50, w, h)));
      assert.equal(faces.length, 1);
    });

    it('maps boxes back to original pixels in a 3840x2160 frame', async (t) => {
      // BlazeFace (front, 128 px input) needs the face to fill a good part of the frame.
      const size = name === 'blazeface' ? 1536 : 512;
      const [px, py] = [2000, 300];
      const faces = await detector.detect(paste(grey(3840, 2160), image('hopper.jpg'), px, py, size));
      t.diagnostic(`4K, hopper pasted at ${size} px: ${faces.map(fmt).join('; ')}`);
      assert.equal(faces.length, 1);
      const k = size / 512;
      const expected: FaceDetection['box'] = [
        px + hopperBox[0] * k,
        py + hopperBox[1] * k,
        hopperBox[2] * k,
        hopperBox[3] * k,
      ];
      assert.ok(
        iou(faces[0]?.box ?? [0, 0, 0, 0], expected) > 0.7,
        `box ${faces[0]?.box} vs expected ${expected}`,
      );
    });

    it('finds two faces side by side (two head-and-shoulder crops, 640x320)', async (t) => {
      const hopper = image('hopper.jpg')
        .getRegion(new cv.Rect(106, 52, 320, 320))
        .copy();
      const astronaut = image('astronaut.png')
        .getRegion(new cv.Rect(124, 18, 200, 200))
        .copy()
        .resize(320, 320);
      const canvas = paste(paste(grey(640, 320), hopper, 0, 0, 320), astronaut, 320, 0, 320);
      const faces = await detector.detect(canvas);
      t.diagnostic(`hopper | astronaut crops: ${faces.map(fmt).join('; ')}`);
      assert.equal(faces.length, 2);
      const xs = faces.map((d) => centre(d)[0]).sort((a, b) => a - b);
      assert.ok((xs[0] as number) < 320 && (xs[1] as number) > 320, `one face per half: ${xs}`);
    });

    it('reports what it finds in two whole portraits side by side (1024x512)', async (t) => {
      // Faces are 90-180 px of 1024: YuNet finds both; the front BlazeFace model (128 px input,
      // astronaut face about 11 px there) misses the smaller one. Documented, not asserted.
      const canvas = paste(
        paste(grey(1024, 512), image('hopper.jpg'), 0, 0, 512),
        image('astronaut.png'),
        512,
        0,
        512,
      );
      const faces = await detector.detect(canvas);
      t.diagnostic(`hopper | astronaut whole: ${faces.length} found ${faces.map(fmt).join('; ')}`);
      assert.ok(faces.length >= 1 && faces.length <= 2);
      if (name === 'yunet') assert.equal(faces.length, 2);
    });

    it('does not crash on a tiny face (hopper at 64 px, face about 20 px) in 640x480', async (t) => {
      const faces = await detector.detect(paste(grey(640, 480), image('hopper.jpg'), 300, 200, 64));
      t.diagnostic(`tiny face: ${faces.length} found ${faces.map(fmt).join('; ')}`);
      assert.ok(faces.length <= 1);
      for (const d of faces) {
        const [cx, cy] = centre(d);
        assert.ok(
          cx > 300 && cx < 364 && cy > 200 && cy < 264,
          `a found face lies in the pasted patch: ${d.box}`,
        );
      }
    });
  });
}

describe('BlazeFace and YuNet agree on eyes and nose', { skip: needsModel('blazeface') }, () => {
  // Two independent models: a decode that shifts or flips coordinates in either one breaks this.
  // Measured disagreement is 0.04-0.18 of the eye distance; 0.25 leaves room for model drift.
  it('within a quarter of the eye distance on every portrait', async (t) => {
    const worker = InferenceWorker.start();
    const opts = {
      model: null,
      scoreThreshold: 0.6,
      nmsIou: 0.3,
      maxFaces: 10,
      providers: ['cpu'],
      intraOpThreads: 1,
      repoRoot,
    };
    try {
      const blaze = await createDetector(worker, { ...opts, name: 'blazeface' });
      const yunet = await createDetector(worker, { ...opts, name: 'yunet', model: detectorModel('yunet') });
      for (const file of PORTRAITS) {
        const [b] = await blaze.detect(image(file));
        const [y] = await yunet.detect(image(file));
        assert.ok(b && y, `${file}: both detect a face`);
        const eyeDistance = Math.hypot(
          y.landmarks[1][0] - y.landmarks[0][0],
          y.landmarks[1][1] - y.landmarks[0][1],
        );
        const errors = [0, 1, 2].map((k) => {
          const [p, q] = [b.landmarks[k] as [number, number], y.landmarks[k] as [number, number]];
          return Math.hypot(p[0] - q[0], p[1] - q[1]) / eyeDistance;
        });
        t.diagnostic(
          `${file}: eye/eye/nose distance ${errors.map((e) => e.toFixed(3)).join(' ')} x eye distance`,
        );
        assert.ok(Math.max(...errors) < 0.25, `${file}: ${errors}`);
      }
    } finally {
      await worker.close();
    }
  });
});

describe('createDetector errors', () => {
  it('rejects an unknown name, listing the valid ones', async () => {
    const worker = InferenceWorker.start();
    try {
      await assert.rejects(
        createDetector(worker, {
          name: 'haar' as DetectorName,
          model: null,
          scoreThreshold: 0.6,
          nmsIou: 0.3,
          maxFaces: 1,
          providers: ['cpu'],
          intraOpThreads: 1,
          repoRoot,
        }),
        (e: Error & { code?: string }) =>
          e.code === 'KIOSK_E_DETECTOR_UNKNOWN' && /blazeface, yunet/.test(e.message),
      );
      await assert.rejects(
        createDetector(worker, {
          name: 'blazeface',
          model: null,
          scoreThreshold: 0.6,
          nmsIou: 0.3,
          maxFaces: 1,
          providers: ['cpu'],
          intraOpThreads: 1,
          repoRoot: path.join(repoRoot, 'no-such-dir'),
        }),
        (e: Error & { code?: string }) =>
          e.code === 'KIOSK_E_MODEL_NOT_FOUND' && /fetch-blazeface\.sh/.test(e.message),
      );
    } finally {
      await worker.close();
    }
  });
});
