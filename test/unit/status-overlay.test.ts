import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cv } from '../../core/cv.js';
import {
  BOX_THICKNESS,
  drawOverlay,
  faceColor,
  faceLabel,
  OverlayColors,
  type OverlayFace,
  overlayShapes,
} from '../../daemon/status/overlay.js';
import { findDrawnBox } from '../helpers/drawn-box.js';

function face(over: Partial<OverlayFace> = {}): OverlayFace {
  return {
    trackId: 7,
    box: [100, 120, 80, 90],
    capturedMono: 0,
    quality: { face_px: 80, sharpness: 0.456, brightness: 0.5 },
    qualityGate: null,
    verdict: 'live',
    scores: { p_live: 0.971 },
    facesInView: 1,
    landmarks: [
      [120, 150],
      [160, 150],
      [140, 170],
      [125, 190],
      [155, 190],
    ],
    detectorScore: 0.9,
    presence: 'new',
    ...over,
  };
}

describe('preview overlay', () => {
  it('colours a face by what the pipeline made of it; a failed gate wins', () => {
    assert.deepEqual(faceColor({ qualityGate: null, verdict: 'live' }), OverlayColors.live);
    assert.deepEqual(faceColor({ qualityGate: null, verdict: 'spoof' }), OverlayColors.spoof);
    assert.deepEqual(faceColor({ qualityGate: null, verdict: 'uncertain' }), OverlayColors.uncertain);
    assert.deepEqual(faceColor({ qualityGate: 'sharpness', verdict: null }), OverlayColors.gate);
    assert.deepEqual(faceColor({ qualityGate: null, verdict: null }), OverlayColors.none);
  });

  it('labels track, verdict, scores, quality figures and the failed gate', () => {
    assert.deepEqual(faceLabel(face()), ['#7 new live p_live=0.97', '80px sharp 0.46 bright 0.50']);
    assert.deepEqual(
      faceLabel(
        face({
          qualityGate: 'face_size',
          verdict: null,
          scores: null,
          quality: { face_px: 41.6, sharpness: 0.1, brightness: 0.2 },
        }),
      ),
      ['#7 new gated', '42px sharp 0.10 bright 0.20 gate: face_size'],
    );
    assert.deepEqual(
      faceLabel(face({ verdict: 'uncertain', scores: { p_real: 0.5, var: 0.123, delta_kl: 150 } }))[0],
      '#7 new uncertain p_real=0.50 var=0.12 delta_kl=150',
    );
    // A person already decided is held and not classified again.
    assert.equal(faceLabel(face({ presence: 'held', verdict: null, scores: null }))[0], '#7 held');
  });

  it('clips boxes to the frame, drops landmarks outside it, places labels above or below', () => {
    const s = overlayShapes(
      [
        face(),
        face({
          trackId: 8,
          box: [-10, 5, 50, 700],
          landmarks: [
            [-1, 10],
            [5, 10],
            [0, 0],
            [639, 479],
            [640, 10],
          ],
        }),
      ],
      640,
      480,
    );
    assert.deepEqual(s.rects[0], {
      x: 100,
      y: 120,
      w: 80,
      h: 90,
      color: OverlayColors.live,
      thickness: BOX_THICKNESS,
    });
    assert.deepEqual(s.rects[1], {
      x: 0,
      y: 5,
      w: 40,
      h: 474,
      color: OverlayColors.live,
      thickness: BOX_THICKNESS,
    });
    assert.equal(s.dots.length, 5 + 3);
    assert.ok((s.labels[0]?.y ?? 0) < 120, 'room above the first box');
    assert.ok((s.labels[2]?.y ?? 0) > 5, 'no room above the second box: below');
    assert.equal(overlayShapes([face({ box: [700, 10, 20, 20] })], 640, 480).rects.length, 0);
  });

  it('draws the boxes in their colour on a copy and leaves the label off the box edges', () => {
    const mat = new cv.Mat(240, 320, cv.CV_8UC3, [30, 30, 30]);
    drawOverlay(mat, overlayShapes([face({ verdict: 'spoof', scores: { p_live: 0.01 } })], 320, 240));
    const px = (x: number, y: number) => mat.atRaw(y, x) as unknown as number[];
    // All four edges of the box [100,120,80,90], away from the corners and landmarks.
    for (const [x, y] of [
      [140, 120],
      [140, 210],
      [100, 165],
      [180, 165],
      [110, 121],
      [170, 209],
    ] as const)
      assert.deepEqual(px(x, y), [...OverlayColors.spoof], `edge pixel ${x},${y}`);
    assert.deepEqual(px(140, 165), [30, 30, 30], 'inside the box is untouched');
    assert.deepEqual(px(120, 150), [...OverlayColors.landmark], 'landmark dot');
    mat.release();
  });
});

describe('the drawn-box finder used on screenshots', () => {
  it('finds a hollow box in an overlay colour, not a filled patch or a lone line', () => {
    const noisy = () => new cv.Mat(240, 320, cv.CV_8UC3, [120, 110, 100]);
    const hollow = noisy();
    drawOverlay(hollow, overlayShapes([face()], 320, 240));
    const found = findDrawnBox(hollow, [OverlayColors.live]);
    assert.ok(
      found &&
        Math.abs(found.x0 - 100) <= 2 &&
        Math.abs(found.y0 - 120) <= 2 &&
        Math.abs(found.x1 - 180) <= 2,
    );
    assert.equal(findDrawnBox(hollow, [OverlayColors.spoof]), null, 'another colour');
    const filled = noisy();
    filled.drawRectangle(new cv.Rect(50, 50, 100, 100), new cv.Vec3(0, 255, 0), -1);
    filled.drawLine(new cv.Point2(10, 200), new cv.Point2(300, 200), new cv.Vec3(0, 255, 0), 3);
    assert.equal(findDrawnBox(filled, [OverlayColors.live]), null);
  });
});
