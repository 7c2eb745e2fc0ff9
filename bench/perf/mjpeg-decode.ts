/**
 * Scaled MJPEG decode for the detector (bench/performance.md, "Scaled MJPEG decode"): what it
 * saves and what it changes. Each shared sample photo is placed in a camera frame (640x480
 * and 1920x1080, the photo fitted in, grey borders) and encoded as JPEG quality 90, as a USB
 * camera's MJPEG mode delivers it. Per frame and detector:
 *  - full: decode the whole JPEG, detect on it (the daemon today);
 *  - scaled: decode at the largest libjpeg scale that still covers the detector's input
 *    (scaleFor), detect on that, put the boxes back on the full frame (scaleDetection).
 * The liveness crop is taken from the full decode in both cases, so it differs only where the
 * box differs: reported as box IoU, largest corner shift, and MiniFASNetV2's live probability
 * on the two crops. CPU per frame of decode + the detector's letterbox input, both ways.
 * decode 'reduced' (issue 28): the scale the per-face step would read (reducedFaceScale, the
 * pipeline's rule) and MiniFASNetV2's live probability on the crop from that reduced decode,
 * same box as "scaled", so the difference is the crop's alone.
 *
 *   node dist/bench/perf/mjpeg-decode.js OUT.json
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, validateConfig } from '../../config/load.js';
import { cv, type Mat } from '../../core/cv.js';
import { iou } from '../../daemon/decision/tracker.js';
import { createDetector } from '../../daemon/detect/index.js';
import { letterboxTensor } from '../../daemon/detect/letterbox.js';
import { scaleDetection } from '../../daemon/detect/scale.js';
import type { DetectorName, FaceDetection } from '../../daemon/detect/types.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { reducedFaceScale } from '../../daemon/pipeline/face-step.js';
import { decodeJpeg, scaleFor } from '../../drivers/camera/jpeg.js';
import { testModel } from '../../test/helpers/models.js';

const out = process.argv[2] ?? '';
const images = path.resolve(packageRoot, '../shared/data/images');
const shared = (f: string) => path.resolve(packageRoot, '../shared/data/models', f);
/** Photos with one upright face; T1 is stored sideways and turned upright like videos.ts does. */
const PHOTOS: [string, number | null][] = [
  ['F1.jpg', null],
  ['F2.jpg', null],
  ['hopper.jpg', null],
  ['T1.jpg', cv.ROTATE_90_COUNTERCLOCKWISE],
];

function cameraFrame(photo: Mat, w: number, h: number): Buffer {
  const s = Math.min(w / photo.cols, h / photo.rows);
  const pw = Math.round(photo.cols * s);
  const ph = Math.round(photo.rows * s);
  const fitted = photo.resize(ph, pw, 0, 0, cv.INTER_AREA);
  const canvas = new cv.Mat(h, w, cv.CV_8UC3, [112, 112, 112]);
  fitted.copyTo(canvas.getRegion(new cv.Rect(Math.floor((w - pw) / 2), Math.floor((h - ph) / 2), pw, ph)));
  return cv.imencode('.jpg', canvas, [cv.IMWRITE_JPEG_QUALITY, 90]);
}

async function cpuMs(n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < 5; i++) await fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / 1000 / n) * 1000) / 1000;
}

async function main(): Promise<void> {
  const missing = [images, shared('MiniFASNetV2.onnx'), shared('yunet_n_320_320.onnx')].find(
    (p) => !existsSync(p),
  );
  if (missing) {
    console.log(`skipped: needs ${missing} (../shared/data), which is absent`);
    return;
  }
  const config = validateConfig({}, 'bench');
  const worker = InferenceWorker.start();
  const detectors: { label: string; name: DetectorName; model: string | null }[] = [
    { label: 'blazeface-back-256 (default)', name: 'blazeface', model: null },
    { label: 'yunet-n-320', name: 'yunet', model: shared('yunet_n_320_320.onnx') },
  ];
  const liveness = await LivenessModel.load(worker, await testModel('minifasnet-v2'), {
    providers: ['cpu'],
    intraOpThreads: 1,
  });
  const pLive = async (full: Mat, face: FaceDetection) => {
    const r = await liveness.classify(full, face);
    return r.scores.p_live ?? Object.values(r.scores)[0] ?? Number.NaN;
  };
  /** p_live on the crop read from the decode at 1/faceScale (null: the rule keeps the full decode). */
  const pLiveReduced = async (jpeg: Buffer, face: FaceDetection, faceScale: number) => {
    if (faceScale === 1) return null;
    const img = decodeJpeg(jpeg, faceScale as 2 | 4 | 8);
    try {
      return Math.round((await pLive(img, scaleDetection(face, 1 / faceScale))) * 10000) / 10000;
    } finally {
      img.release();
    }
  };
  const rows: unknown[] = [];
  for (const d of detectors) {
    const detector = await createDetector(worker, {
      name: d.name,
      model: d.model,
      scoreThreshold: config.detector.score_threshold,
      nmsIou: config.detector.nms_iou,
      maxFaces: config.detector.max_faces,
      providers: ['cpu'],
      intraOpThreads: 1,
      allowSpinning: false,
      repoRoot: packageRoot,
    });
    const need = Math.max(detector.inputWidth, detector.inputHeight);
    for (const [w, h] of [
      [640, 480],
      [1920, 1080],
    ] as const) {
      const scale = scaleFor(w, h, need);
      for (const [file, rotate] of PHOTOS) {
        let photo = cv.imread(path.join(images, file));
        if (rotate !== null) photo = photo.rotate(rotate);
        const jpeg = cameraFrame(photo, w, h);
        const full = decodeJpeg(jpeg, 1);
        const small = decodeJpeg(jpeg, scale);
        const a = (await detector.detect(full))[0] ?? null;
        const bSmall = (await detector.detect(small))[0] ?? null;
        const b = bSmall ? scaleDetection(bSmall, full.cols / small.cols) : null;
        const shift =
          a && b
            ? Math.max(
                Math.abs(a.box[0] - b.box[0]),
                Math.abs(a.box[1] - b.box[1]),
                Math.abs(a.box[0] + a.box[2] - b.box[0] - b.box[2]),
                Math.abs(a.box[1] + a.box[3] - b.box[1] - b.box[3]),
              )
            : null;
        const row = {
          detector: d.label,
          frame: `${w}x${h}`,
          photo: file,
          scale,
          decodedForDetector: `${small.cols}x${small.rows}`,
          jpegBytes: jpeg.length,
          boxFull: a?.box.map((v) => Math.round(v)) ?? null,
          boxScaled: b?.box.map((v) => Math.round(v)) ?? null,
          iou: a && b ? Math.round(iou(a.box, b.box) * 1000) / 1000 : null,
          maxCornerShiftPx: shift === null ? null : Math.round(shift * 10) / 10,
          boxWidthPx: a ? Math.round(a.box[2]) : null,
          pLiveFull: a ? Math.round((await pLive(full, a)) * 10000) / 10000 : null,
          pLiveScaled: b ? Math.round((await pLive(full, b)) * 10000) / 10000 : null,
          faceScale: b ? reducedFaceScale(liveness, w, h, [b], scale) : null,
          pLiveReduced: b ? await pLiveReduced(jpeg, b, reducedFaceScale(liveness, w, h, [b], scale)) : null,
          decodeFullMs: await cpuMs(40, () => decodeJpeg(jpeg, 1).release()),
          decodeScaledMs: await cpuMs(40, () => decodeJpeg(jpeg, scale).release()),
          // The detector's input from each decode (letterbox resize + planar tensor).
          inputFullMs: await cpuMs(40, () =>
            letterboxTensor(full, detector.inputWidth, detector.inputHeight, { kind: 'nchw-bgr' }, 0),
          ),
          inputScaledMs: await cpuMs(40, () =>
            letterboxTensor(small, detector.inputWidth, detector.inputHeight, { kind: 'nchw-bgr' }, 0),
          ),
        };
        rows.push(row);
        console.log(JSON.stringify(row));
        full.release();
        small.release();
      }
    }
    await detector.close();
  }
  await liveness.close();
  await worker.close();
  if (out) writeFileSync(out, `${JSON.stringify(rows, null, 1)}\n`);
}

await main();
