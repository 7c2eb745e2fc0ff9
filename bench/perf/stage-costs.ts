/**
 * What each CPU-side stage of a frame costs alone (bench/performance.md, "Per-stage CPU cost",
 * and the Jetson budget in docs/jetson.md): every stage run on its own, one at a time, on
 * frames of the equal-work video, with nothing else running; CPU time per call (process CPU
 * time, so a stage that uses several threads counts all of them). The networks are timed in
 * their inference lane with one intra-op thread (their run time is then their CPU time).
 *
 *   node dist/bench/perf/stage-costs.js VIDEO OUT.json
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, validateConfig } from '../../config/load.js';
import { cv, type Mat } from '../../core/cv.js';
import { scaledBoxCrop, toTensor } from '../../daemon/align/aligner.js';
import { emptyFusionState, fuse } from '../../daemon/decision/fusion.js';
import { measureFaceInImage } from '../../daemon/decision/quality.js';
import { IouTracker } from '../../daemon/decision/tracker.js';
import { letterboxTensor } from '../../daemon/detect/letterbox.js';
import { postprocess } from '../../daemon/detect/nms.js';
import { decodeYuNet, gatherYuNetOutputs } from '../../daemon/detect/yunet.js';
import {
  DETECTOR_LANE,
  f32,
  InferenceWorker,
  LIVENESS_LANE,
} from '../../daemon/inference/inference-worker.js';

const [video = '', out = ''] = process.argv.slice(2);
const shared = (f: string) => path.resolve(packageRoot, '../shared/data/models', f);

/** CPU ms per call of `fn`, over `n` calls after 10 unmeasured ones. */
async function cpuPerCall(n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 10; i++) await fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / 1000 / n) * 1000) / 1000;
}

const cap = new cv.VideoCapture(video);
const frames: Mat[] = [];
for (let i = 0; i < 60; i++) frames.push(await cap.readAsync());
const frame = (i: number) => frames[i % frames.length] as Mat;
const { cols: width, rows: height } = frame(0);

const worker = InferenceWorker.start();
const yunet = await worker.load(shared('yunet_n_320_320.onnx'), { lane: DETECTOR_LANE, intraOpThreads: 1 });
const mini = await worker.load(shared('MiniFASNetV2.onnx'), { lane: LIVENESS_LANE, intraOpThreads: 1 });
const yunetIn = async (i: number) =>
  (await letterboxTensor(frame(i), 320, 320, { kind: 'nchw-bgr' }, 0)).tensor;
const { outputs } = await yunet.run({ input: f32(await yunetIn(0), [1, 3, 320, 320]) });
const { lb } = await letterboxTensor(frame(0), 320, 320, { kind: 'nchw-bgr' }, 0);
const tuning = { scoreThreshold: 0.6, nmsIou: 0.3, maxFaces: 10, width, height };
const faces = postprocess(decodeYuNet(gatherYuNetOutputs(outputs), 320, 320, 0.6), tuning);
const face = faces[0];
if (!face) throw new Error('no face in the first frame');
const box = face.box;
const spec = { color: 'BGR' as const, normalize: { mean: [0, 0, 0], std: [1, 1, 1] } };
const config = validateConfig({}, 'bench');
const tracker = new IouTracker(config.decision);
let fusion = emptyFusionState();

const netMs = async (run: () => Promise<{ ms: number }>, n: number) => {
  let ms = 0;
  for (let i = 0; i < 10; i++) await run();
  for (let i = 0; i < n; i++) ms += (await run()).ms;
  return Math.round((ms / n) * 1000) / 1000;
};

const stages: Record<string, number> = {
  'decode (readAsync: H.264 + BGR)': await (async () => {
    const c = new cv.VideoCapture(video);
    return cpuPerCall(100, async () => (await c.readAsync()).release());
  })(),
  'detector input (letterbox resize + planar tensor)': await cpuPerCall(300, yunetIn),
  'YuNet-n-320 network (1 thread)': await netMs(
    async () => yunet.run({ input: f32(await yunetIn(0), [1, 3, 320, 320]) }),
    100,
  ),
  'detector output (decode + NMS + unletterbox)': await cpuPerCall(1000, () =>
    postprocess(decodeYuNet(gatherYuNetOutputs(outputs), lb.dstW, lb.dstH, 0.6), tuning),
  ),
  'quality gates (face region: grey, 112 px, Laplacian)': await cpuPerCall(300, (i) =>
    measureFaceInImage(frame(i), box),
  ),
  'liveness input (2.7x box crop, 80x80 tensor)': await cpuPerCall(1000, (i) => {
    const crop = scaledBoxCrop(frame(i), box, 2.7, 80, 80);
    const t = toTensor(crop, spec);
    crop.release();
    return t;
  }),
  'MiniFASNetV2 network (1 thread, PRelu rewritten)': await netMs(
    () => mini.run({ input: f32(new Float32Array(19200).fill(100), [1, 3, 80, 80]) }),
    200,
  ),
  'tracking + fusion (one face)': await cpuPerCall(3000, (i) => {
    const u = tracker.update([box], i * 33);
    const r = fuse(
      fusion,
      {
        nowMs: i * 33,
        cameraId: 'c',
        observations: [
          {
            trackId: u.assignments[0]?.trackId ?? 0,
            box,
            capturedMono: i * 33,
            quality: { face_px: 270, sharpness: 0.5, brightness: 0.5 },
            qualityGate: null,
            verdict: 'live',
            scores: { p_live: 0.9 },
            facesInView: 1,
          },
        ],
        lostTrackIds: u.lost,
      },
      config.decision,
    );
    fusion = r.state;
  }),
};
await worker.close();
const result = { video, width, height, stages };
writeFileSync(out, `${JSON.stringify(result)}\n`);
console.log(JSON.stringify(result));
