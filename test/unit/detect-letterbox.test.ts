import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cv } from '../../core/cv.js';
import {
  computeLetterbox,
  fillTensor,
  letterboxPoint,
  letterboxTensor,
  type TensorLayout,
  unletterbox,
  unletterboxPoint,
} from '../../daemon/detect/letterbox.js';
import type { FaceDetection, Point } from '../../daemon/detect/types.js';

const close = (a: number, b: number, eps = 1e-9) =>
  assert.ok(Math.abs(a - b) <= eps, `${a} != ${b} (eps ${eps})`);

describe('computeLetterbox', () => {
  it('fits a landscape frame: full width, padding split top and bottom', () => {
    const lb = computeLetterbox(640, 480, 128, 128);
    assert.deepEqual(
      { innerW: lb.innerW, innerH: lb.innerH, padX: lb.padX, padY: lb.padY },
      { innerW: 128, innerH: 96, padX: 0, padY: 16 },
    );
  });
  it('fits a portrait frame: full height, padding left and right', () => {
    const lb = computeLetterbox(480, 640, 640, 640);
    assert.deepEqual([lb.innerW, lb.innerH, lb.padX, lb.padY], [480, 640, 80, 0]);
  });
  it('fits 4K into 640 and upscales a small image', () => {
    const k = computeLetterbox(3840, 2160, 640, 640);
    assert.deepEqual([k.innerW, k.innerH, k.padX, k.padY], [640, 360, 0, 140]);
    const s = computeLetterbox(64, 32, 128, 128);
    assert.deepEqual([s.innerW, s.innerH, s.padX, s.padY], [128, 64, 0, 32]);
  });
  it('rejects empty sizes', () => {
    assert.throws(() => computeLetterbox(0, 480, 128, 128), /positive sizes/);
  });
});

describe('unletterbox', () => {
  it('round-trips points for odd sizes (rounded inner size)', () => {
    for (const [sw, sh, dw, dh] of [
      [641, 479, 128, 128],
      [333, 999, 320, 320],
      [3840, 2160, 640, 640],
      [100, 100, 128, 96],
    ] as const) {
      const lb = computeLetterbox(sw, sh, dw, dh);
      for (const p of [
        [0, 0],
        [sw, sh],
        [sw / 3, sh / 7],
      ] as Point[]) {
        const back = unletterboxPoint(lb, letterboxPoint(lb, p));
        close(back[0], p[0], 1e-6);
        close(back[1], p[1], 1e-6);
      }
    }
  });
  it('maps network corners of the inner image to the original corners', () => {
    const lb = computeLetterbox(640, 480, 128, 128);
    assert.deepEqual(unletterboxPoint(lb, [0, 16]), [0, 0]);
    assert.deepEqual(unletterboxPoint(lb, [128, 112]), [640, 480]);
  });
  it('maps a whole detection (box and landmarks) back to original pixels', () => {
    const lb = computeLetterbox(640, 480, 128, 128); // x5 scale, 16 px top padding
    const d: FaceDetection = {
      box: [10, 26, 20, 30],
      landmarks: [
        [15, 30],
        [25, 30],
        [20, 36],
        [16, 44],
        [24, 44],
      ],
      score: 0.9,
    };
    const o = unletterbox(lb, d);
    assert.deepEqual(o.box, [50, 50, 100, 150]);
    assert.deepEqual(o.landmarks[0], [75, 70]);
    assert.deepEqual(o.landmarks[4], [120, 140]);
    assert.equal(o.score, 0.9);
  });
});

describe('fillTensor', () => {
  // A 2x1 inner image (two BGR pixels) letterboxed into 2x3: one padding row above and below.
  const lb = computeLetterbox(2, 1, 2, 3);
  const bgr = Uint8Array.from([10, 20, 30, 40, 50, 60]);
  it('writes NCHW BGR planes with padding', () => {
    assert.deepEqual([lb.innerW, lb.innerH, lb.padX, lb.padY], [2, 1, 0, 1]);
    const t = fillTensor(bgr, lb, { kind: 'nchw-bgr' }, -7);
    assert.deepEqual(Array.from(t), [-7, -7, 10, 40, -7, -7, -7, -7, 20, 50, -7, -7, -7, -7, 30, 60, -7, -7]);
  });
  it('writes NHWC RGB with scale and offset', () => {
    const t = fillTensor(bgr, lb, { kind: 'nhwc-rgb', scale: 0.5, offset: 1 }, 0);
    assert.deepEqual(Array.from(t.subarray(6, 12)), [16, 11, 6, 31, 26, 21]);
    assert.deepEqual(Array.from(t.subarray(0, 6)), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(t.subarray(12)), [0, 0, 0, 0, 0, 0]);
  });
});

describe('letterboxTensor', () => {
  /** A deterministic BGR image with structure in every channel. */
  function image(w: number, h: number) {
    const data = Buffer.alloc(w * h * 3);
    // Blocks of 64 x 32 pixels, different per channel: structure that survives any downscale.
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++)
          data[(y * w + x) * 3 + c] = ((x >> 6) * 40 + (y >> 5) * 17 + c * 60) % 256;
    return new cv.Mat(data, h, w, cv.CV_8UC3);
  }

  const planar: TensorLayout = { kind: 'nchw-bgr' };
  const interleaved: TensorLayout = { kind: 'nhwc-rgb', scale: 2 / 255, offset: -1 };
  for (const [w, h, dw, dh, pad, layout] of [
    [640, 480, 320, 320, 0, planar], // landscape: padding above and below
    [480, 640, 320, 320, 0, planar], // portrait: padding left and right
    [300, 200, 160, 128, -3, planar], // both, with a non-zero pad value
    [2000, 1000, 320, 320, 0, planar], // above SYNC_RESIZE_MAX_PIXELS: resized on the pool
    [640, 480, 256, 256, -1, interleaved], // BlazeFace's layout
    [480, 640, 128, 128, 0, interleaved],
  ] as const) {
    it(`${w}x${h} -> ${dw}x${dh} ${layout.kind}: the fast path writes exactly what fillTensor writes`, async () => {
      const img = image(w, h);
      const { tensor, lb } = await letterboxTensor(img, dw, dh, layout, pad);
      const inner = img.resize(lb.innerH, lb.innerW, 0, 0, lb.innerW < w ? cv.INTER_AREA : cv.INTER_LINEAR);
      const bytes = inner.getData();
      const ref = fillTensor(
        new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        lb,
        layout,
        pad,
      );
      assert.equal(tensor.length, ref.length);
      assert.ok(
        tensor.every((v, i) => v === ref[i]),
        'tensors differ',
      );
      assert.ok(new Set(tensor).size > 20, 'the image content reached the tensor');
      img.release();
      inner.release();
    });
  }
});
