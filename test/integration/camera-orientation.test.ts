/**
 * Camera orientation (issue 15): a camera mounted sideways, corrected with `rotate`, gives the
 * decisions the upright camera gives. The sample video is turned 90 degrees clockwise by
 * ffmpeg (`transpose=1`, as a phone held sideways films it) and read back through the file
 * driver with `rotate: 270`; the real detector and liveness model decide on both, frame by
 * frame on the video's own clock (so the comparison does not depend on this machine's speed).
 * Both videos are written losslessly in RGB by the same ffmpeg path, so the corrected frames
 * are the upright frames pixel for pixel and any difference would be the orientation's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { cameraSchema, configSchema } from '../../config/schema.js';
import { cv } from '../../core/cv.js';
import type { SessionDecision } from '../../daemon/decision/types.js';
import { createDetector, type FaceDetector } from '../../daemon/detect/index.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { CameraPipeline } from '../../daemon/pipeline/pipeline.js';
import { createCamera, orientMat } from '../../drivers/camera/index.js';
import { repoRoot } from '../helpers/paths.js';

const FPS = 15;

describe('orientMat', () => {
  // 2 rows x 3 columns, each pixel's blue value its index: 0 1 2 / 3 4 5.
  const src = new cv.Mat(2, 3, cv.CV_8UC3);
  for (let i = 0; i < 6; i++) src.set(Math.floor(i / 3), i % 3, [i, 0, 0]);
  const grid = (m: InstanceType<typeof cv.Mat>) =>
    Array.from({ length: m.rows }, (_, r) =>
      Array.from({ length: m.cols }, (_, c) => (m.at(r, c) as unknown as { x: number }).x),
    );

  it('rotates clockwise by the given degrees, then flips', () => {
    assert.deepEqual(grid(orientMat(src, { rotate: 0, flip: 'none' })), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    assert.deepEqual(grid(orientMat(src, { rotate: 90, flip: 'none' })), [
      [3, 0],
      [4, 1],
      [5, 2],
    ]);
    assert.deepEqual(grid(orientMat(src, { rotate: 180, flip: 'none' })), [
      [5, 4, 3],
      [2, 1, 0],
    ]);
    assert.deepEqual(grid(orientMat(src, { rotate: 270, flip: 'none' })), [
      [2, 5],
      [1, 4],
      [0, 3],
    ]);
    assert.deepEqual(grid(orientMat(src, { rotate: 0, flip: 'horizontal' })), [
      [2, 1, 0],
      [5, 4, 3],
    ]);
    assert.deepEqual(grid(orientMat(src, { rotate: 90, flip: 'vertical' })), [
      [5, 2],
      [4, 1],
      [3, 0],
    ]);
  });

  it('the camera keys are validated', () => {
    assert.equal(cameraSchema.parse({ rotate: 90 }).rotate, 90);
    assert.throws(() => cameraSchema.parse({ rotate: 45 }));
    assert.throws(() => cameraSchema.parse({ flip: 'diagonal' }));
    assert.deepEqual([cameraSchema.parse({}).rotate, cameraSchema.parse({}).flip], [0, 'none']);
  });
});

const ffmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

describe('a sideways camera with rotate decides like the upright one', {
  skip: ffmpeg ? false : 'needs ffmpeg on PATH (to turn the sample video sideways)',
}, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-orient-'));
  const sample = path.join(repoRoot, 'media/demo-kiosk.mp4');
  const upright = path.join(dir, 'upright.mkv');
  const sideways = path.join(dir, 'sideways.mkv');
  let worker: InferenceWorker;
  let detector: FaceDetector;
  let liveness: LivenessModel;
  const config = configSchema.parse({});

  before(async () => {
    for (const [out, vf] of [
      [upright, 'format=gbrp'],
      [sideways, 'format=gbrp,transpose=1'],
    ] as const) {
      const r = spawnSync('ffmpeg', [
        '-v',
        'error',
        '-y',
        '-i',
        sample,
        '-vf',
        vf,
        '-c:v',
        'libx264rgb',
        '-qp',
        '0',
        '-preset',
        'ultrafast',
        out,
      ]);
      assert.equal(r.status, 0, r.stderr.toString());
    }
    worker = InferenceWorker.start();
    detector = await createDetector(worker, {
      name: config.detector.name,
      model: null,
      scoreThreshold: config.detector.score_threshold,
      nmsIou: config.detector.nms_iou,
      maxFaces: config.detector.max_faces,
      providers: ['cpu'],
      intraOpThreads: 1,
      repoRoot,
    });
    liveness = await LivenessModel.load(worker, path.join(repoRoot, config.liveness.manifest), {
      providers: ['cpu'],
      intraOpThreads: 1,
    });
  });

  after(async () => {
    await liveness?.close();
    await detector?.close();
    await worker?.close();
  });

  /** Every frame of the file through the pipeline, timed by its frame number. */
  async function decide(source: string, rotate: 0 | 90 | 180 | 270) {
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
    const camera = createCamera(
      { ...cameraSchema.parse({}), source, loop: false, realtime: false, rotate },
      { repoRoot },
    );
    let clock = 0;
    const pipeline = new CameraPipeline({
      cameraId: 'front',
      camera,
      detector,
      liveness,
      config,
      log,
      stages: { record: () => {} },
      sink: { decision: () => {} },
      now: () => clock,
    });
    const decisions: SessionDecision[] = [];
    let frames = 0;
    let size = '';
    await camera.open();
    for await (const f of camera.frames()) {
      frames++;
      size = `${f.width}x${f.height}`;
      clock = (f.seq * 1000) / FPS;
      try {
        decisions.push(...(await pipeline.processFrame({ ...f, capturedMono: clock })));
      } finally {
        f.mat.release();
      }
    }
    await camera.close();
    const summary = decisions.map((d) => `${d.trackId}:${d.decision}/${d.reason} ${d.frames.seen}`);
    return {
      frames,
      size,
      summary,
      accepts: decisions.filter((d) => d.decision === 'accept').length,
      warnings,
    };
  }

  it('same decisions, frame for frame', async () => {
    const a = await decide(upright, 0);
    const b = await decide(sideways, 270);
    assert.equal(a.size, '640x480');
    assert.equal(b.size, '640x480', 'the corrected frames are upright');
    assert.equal(a.frames, b.frames);
    assert.ok(a.summary.length >= 2, `the sample video gives several decisions: ${a.summary}`);
    assert.deepEqual(b.summary, a.summary);
    // Without the correction the same video decides differently (faces turned 90 degrees).
    const c = await decide(sideways, 0);
    assert.equal(c.size, '480x640');
    assert.notDeepEqual(c.summary, a.summary);
    // ... and the pipeline says why instead of staying silent: the faces stand sideways.
    assert.ok(
      c.warnings.some((w) => /add 270 to cameras\[\]\.rotate/.test(w)),
      `no tilt warning: ${c.warnings.join(' | ')}`,
    );
    assert.deepEqual(
      [...a.warnings, ...b.warnings].filter((w) => /rotate/.test(w)),
      [],
      'upright faces raise no tilt warning',
    );
    console.log(
      `upright: ${a.summary.length} decisions (${a.accepts} accept); sideways + rotate 270: same; ` +
        `sideways uncorrected: ${c.summary.length} decisions (${c.accepts} accept)`,
    );
  });
});
