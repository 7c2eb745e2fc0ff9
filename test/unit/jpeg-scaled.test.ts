/**
 * Scaled JPEG decoding for the detector (drivers/camera/jpeg.ts, daemon/detect/scale.ts): the
 * scale never makes the detector upscale, a reduced decode is the frame at 1/scale, boxes found
 * on it land where the same content is on the full frame, and garbage is a stable error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cv } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { scaleDetection } from '../../daemon/detect/scale.js';
import { decodeJpeg, scaleFor } from '../../drivers/camera/jpeg.js';

describe('scaled JPEG decode', () => {
  it('picks the largest libjpeg scale that still covers the detector input', () => {
    assert.equal(scaleFor(640, 480, 320), 2);
    assert.equal(scaleFor(640, 480, 640), 1);
    assert.equal(scaleFor(1920, 1080, 320), 4);
    assert.equal(scaleFor(1920, 1080, 256), 4);
    assert.equal(scaleFor(1920, 1080, 128), 8);
    assert.equal(scaleFor(1280, 720, 320), 4);
    assert.equal(scaleFor(100, 80, 320), 1);
  });

  it('a reduced decode is the frame at 1/scale; a box on it lands on the same content in the full frame', () => {
    // A grey 1920x1080 frame with a white square at (800, 400), 320 px wide.
    const frame = new cv.Mat(1080, 1920, cv.CV_8UC3, [90, 90, 90]);
    frame.getRegion(new cv.Rect(800, 400, 320, 320)).setTo(new cv.Vec3(250, 250, 250));
    const jpeg = cv.imencode('.jpg', frame, [cv.IMWRITE_JPEG_QUALITY, 90]);
    const small = decodeJpeg(jpeg, 4);
    assert.deepEqual([small.cols, small.rows, small.channels], [480, 270, 3]);
    // Where the square is on the reduced image (bounding box of the bright pixels).
    const pts = small.cvtColor(cv.COLOR_BGR2GRAY).threshold(170, 255, cv.THRESH_BINARY).findNonZero();
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    const r = {
      x: Math.min(...xs),
      y: Math.min(...ys),
      width: Math.max(...xs) - Math.min(...xs) + 1,
      height: Math.max(...ys) - Math.min(...ys) + 1,
    };
    const back = scaleDetection(
      {
        box: [r.x, r.y, r.width, r.height],
        landmarks: [
          [r.x, r.y],
          [r.x + r.width, r.y],
          [r.x, r.y],
          [r.x, r.y],
          [r.x, r.y],
        ],
        score: 0.9,
      },
      frame.cols / small.cols,
    );
    const want = [800, 400, 320, 320];
    back.box.forEach((v, i) => {
      assert.ok(Math.abs(v - (want[i] as number)) <= 4, `box ${back.box} vs ${want}`);
    });
    assert.deepEqual(back.landmarks[1], [(r.x + r.width) * 4, r.y * 4]);
    assert.equal(back.score, 0.9);
    const full = decodeJpeg(jpeg);
    assert.deepEqual([full.cols, full.rows], [1920, 1080]);
  });

  it('a buffer that is not a JPEG is KIOSK_E_CAMERA_READ_FAILED', () => {
    // Empty (OpenCV would abort the process), not a JPEG, and a JPEG cut short after its marker.
    const cut = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
    for (const bad of [Buffer.from('not a jpeg at all'), Buffer.alloc(0), cut]) {
      assert.throws(
        () => decodeJpeg(bad, 2),
        (e: unknown) => e instanceof KioskError && e.code === ErrorCodes.CAMERA_READ_FAILED,
      );
    }
  });
});
