import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BLAZEFACE_ANCHORS,
  blazeFaceAnchors,
  blazeKeypointsToLandmarks5,
  decodeBlazeFace,
  gatherBlazeOutputs,
} from '../../daemon/detect/blazeface.js';
import type { Point } from '../../daemon/detect/types.js';
import { decodeYuNet, gatherYuNetOutputs, type YuNetLevel } from '../../daemon/detect/yunet.js';
import type { WireTensor } from '../../daemon/inference/inference-worker.js';

const closeTo = (actual: number[], expected: number[], eps = 1e-4) => {
  assert.equal(actual.length, expected.length);
  for (const [i, a] of actual.entries()) {
    assert.ok(Math.abs(a - (expected[i] as number)) <= eps, `[${i}] ${a} != ${expected[i]}`);
  }
};
const logit = (p: number) => Math.log(p / (1 - p));

/** Hand-built BlazeFace outputs: every anchor at logit -10 except the ones set. */
function blazeOutputs(set: { anchor: number; p: number; reg: number[] }[]): {
  logits: Float32Array;
  regressors: Float32Array;
} {
  const logits = new Float32Array(BLAZEFACE_ANCHORS).fill(-10);
  const regressors = new Float32Array(BLAZEFACE_ANCHORS * 16);
  for (const s of set) {
    logits[s.anchor] = logit(s.p);
    regressors.set(s.reg, s.anchor * 16);
  }
  return { logits, regressors };
}

// box centre offset (2, -4), size 40 x 50, keypoints: eyes, nose, mouth centre, ears
const REG = [2, -4, 40, 50, -10, -8, 10, -8, 0, 2, 0, 14, -20, 0, 20, 0];

describe('BlazeFace decode', () => {
  it('has 896 anchors: 16x16x2 then 8x8x6, cell centres', () => {
    const a = blazeFaceAnchors();
    assert.equal(a.length, 896 * 2);
    assert.deepEqual([a[0], a[1], a[2], a[3]], [1 / 32, 1 / 32, 1 / 32, 1 / 32]);
    assert.deepEqual([a[4], a[5]], [3 / 32, 1 / 32]); // cell (col 1, row 0)
    assert.deepEqual([a[1022], a[1023]], [31 / 32, 31 / 32]); // last of the 16x16 grid
    assert.deepEqual([a[1024], a[1025]], [1 / 16, 1 / 16]); // first of the 8x8 grid
    assert.deepEqual([a[1790], a[1791]], [15 / 16, 15 / 16]);
  });

  it('decodes a 16x16-grid anchor: box, landmarks and sigmoid score in input pixels', () => {
    // row 5, col 7, second anchor -> index 175, centre (7.5/16, 5.5/16) x 128 = (60, 44)
    const { logits, regressors } = blazeOutputs([{ anchor: (5 * 16 + 7) * 2 + 1, p: 0.9, reg: REG }]);
    const out = decodeBlazeFace(logits, regressors, 128, 128, 0.5);
    assert.equal(out.length, 1);
    const d = out[0];
    assert.ok(d);
    closeTo(d.box, [42, 15, 40, 50]);
    closeTo([d.score], [0.9], 1e-6);
    closeTo(d.landmarks.flat(), [50, 36, 70, 36, 60, 46, 60 - 0.415 * 20, 58, 60 + 0.415 * 20, 58]);
  });

  it('decodes an 8x8-grid anchor and scales anchors with the input size (256 back model)', () => {
    // row 3, col 4, sixth anchor -> 512 + (3*8+4)*6 + 5 = 685, centre (4.5/8, 3.5/8) x 256 = (144, 112)
    const { logits, regressors } = blazeOutputs([{ anchor: 685, p: 0.8, reg: REG }]);
    const [d] = decodeBlazeFace(logits, regressors, 256, 256, 0.5);
    assert.ok(d);
    closeTo(d.box, [126, 83, 40, 50]);
    closeTo(d.landmarks[2], [144, 114]);
  });

  it('applies the score threshold and rejects wrong sizes', () => {
    const { logits, regressors } = blazeOutputs([
      { anchor: 10, p: 0.74, reg: REG },
      { anchor: 700, p: 0.76, reg: REG },
    ]);
    assert.deepEqual(
      decodeBlazeFace(logits, regressors, 128, 128, 0.75).map((d) => Math.round(d.score * 100)),
      [76],
    );
    assert.throws(() => decodeBlazeFace(new Float32Array(10), regressors, 128, 128, 0.5), /896/);
  });

  it('estimates mouth corners along the eye line (a rolled face keeps its roll)', () => {
    const kps: Point[] = [
      [0, 0],
      [10, 10],
      [5, 10],
      [0, 20],
      [-5, 0],
      [15, 15],
    ];
    const l = blazeKeypointsToLandmarks5(kps);
    closeTo(l.flat(), [0, 0, 10, 10, 5, 10, -4.15, 15.85, 4.15, 24.15]);
  });

  it('finds outputs by shape whatever their names, in anchor order', () => {
    const t = (dims: number[], v: number): WireTensor => ({
      type: 'float32',
      dims,
      data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v),
    });
    const g = gatherBlazeOutputs({
      'Identity_3:0': t([1, 384, 16], 4),
      'Identity:0': t([1, 512, 1], 1),
      'Identity_2:0': t([1, 512, 16], 3),
      'Identity_1:0': t([1, 384, 1], 2),
    });
    assert.deepEqual(
      [g.logits[511], g.logits[512], g.regressors[512 * 16 - 1], g.regressors[512 * 16]],
      [1, 2, 3, 4],
    );
    assert.throws(() => gatherBlazeOutputs({ x: t([1, 512, 1], 0) }), /KIOSK_E|missing/);
  });
});

/** Hand-built YuNet outputs for a W x H input, all anchors scoring 0 except the ones set. */
function yunetLevels(w: number, h: number): YuNetLevel[] {
  return [8, 16, 32].map((s) => {
    const n = (w / s) * (h / s);
    return {
      stride: s,
      cls: new Float32Array(n),
      obj: new Float32Array(n),
      bbox: new Float32Array(4 * n),
      kps: new Float32Array(10 * n),
    };
  });
}

describe('YuNet decode', () => {
  it('decodes one anchor: sqrt(cls*obj), centre (col+dx)*s, size exp()*s, landmarks', () => {
    const levels = yunetLevels(640, 640);
    const l16 = levels[1];
    assert.ok(l16);
    const i = 10 * 40 + 12; // stride 16: 40 columns; row 10, col 12
    l16.cls[i] = 0.81;
    l16.obj[i] = 1;
    l16.bbox.set([0.5, 0.25, Math.log(4), Math.log(5)], 4 * i);
    l16.kps.set([0, 0, 1, 0, 0.5, 0.5, 0.25, 1, 0.75, 1], 10 * i);
    const out = decodeYuNet(levels, 640, 640, 0.6);
    assert.equal(out.length, 1);
    const d = out[0];
    assert.ok(d);
    closeTo([d.score], [0.9], 1e-6);
    closeTo(d.box, [168, 124, 64, 80]);
    closeTo(d.landmarks.flat(), [192, 160, 208, 160, 200, 168, 196, 176, 204, 176]);
  });

  it('clamps cls and obj to [0, 1] before the square root, then thresholds', () => {
    const levels = yunetLevels(320, 320);
    const l32 = levels[2];
    assert.ok(l32);
    l32.cls[0] = 1.7; // clamps to 1
    l32.obj[0] = 0.49; // score 0.7
    l32.cls[1] = -0.2; // clamps to 0
    l32.obj[1] = 1;
    l32.cls[99] = 0.25; // score 0.5, below 0.6
    l32.obj[99] = 1;
    const out = decodeYuNet(levels, 320, 320, 0.6);
    assert.deepEqual(
      out.map((d) => Math.round(d.score * 1000)),
      [700],
    );
    closeTo(out[0]?.box ?? [], [0 - 16, 0 - 16, 32, 32]); // bbox 0: centre (0,0), exp(0)*32
  });

  it('reads any input size: rows and columns follow the model (320x320 n model)', () => {
    const levels = yunetLevels(320, 320);
    const l8 = levels[0];
    assert.ok(l8);
    const i = 39 * 40 + 39; // last anchor of the 40x40 grid
    l8.cls[i] = 1;
    l8.obj[i] = 1;
    const [d] = decodeYuNet(levels, 320, 320, 0.5);
    closeTo(d?.box ?? [], [312 - 4, 312 - 4, 8, 8]);
    assert.throws(() => decodeYuNet(levels, 640, 640, 0.5), /expected 6400 anchors/);
  });

  it('gathers outputs by name and explains a missing one', () => {
    const mk = (n: number, k: number): WireTensor => ({
      type: 'float32',
      dims: [1, n, k],
      data: new Float32Array(n * k),
    });
    const outputs: Record<string, WireTensor> = {};
    for (const s of [8, 16, 32]) {
      const n = (320 / s) ** 2;
      outputs[`cls_${s}`] = mk(n, 1);
      outputs[`obj_${s}`] = mk(n, 1);
      outputs[`bbox_${s}`] = mk(n, 4);
      outputs[`kps_${s}`] = mk(n, 10);
    }
    assert.equal(gatherYuNetOutputs(outputs)[2]?.cls.length, 100);
    delete outputs.kps_32;
    assert.throws(() => gatherYuNetOutputs(outputs), /kps_32/);
  });
});
