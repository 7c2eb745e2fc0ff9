/**
 * MJPEG cameras (issue 28): ffmpeg copies an MJPEG source's JPEG images (`cameras[].decode:
 * auto`), the stream is split into single images, the detector reads a reduced decode and the
 * per-face step the full one. Checked: the split is exact whatever the chunking (an EXIF-like
 * segment holding an SOI/EOI pair, garbage between images); a source that is not MJPEG falls
 * back to ffmpeg's decode; a frame that does not decode is KIOSK_E_CAMERA_READ_FAILED, counted
 * and skipped while the camera goes on; and on the sample video the scaled path decides the
 * people the full-decode path decides.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cameraSchema, configSchema } from '../../config/schema.js';
import { cv } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import type { SessionDecision } from '../../daemon/decision/types.js';
import { createDetector, type FaceDetector } from '../../daemon/detect/index.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { CameraPipeline } from '../../daemon/pipeline/pipeline.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { createCamera } from '../../drivers/camera/index.js';
import {
  decodeJpeg,
  JpegFrame,
  JpegImage,
  JpegStreamSplitter,
  releaseFrame,
} from '../../drivers/camera/jpeg.js';
import type { CameraDriver, Frame } from '../../drivers/camera/types.js';
import { repoRoot } from '../helpers/paths.js';

function jpegOf(seed: number, w = 64, h = 48): Buffer {
  const m = new cv.Mat(h, w, cv.CV_8UC3, [seed % 256, (seed * 7) % 256, (seed * 13) % 256]);
  m.getRegion(new cv.Rect(4, 4, 16, 16)).setTo(new cv.Vec3(255 - (seed % 256), 30, 200));
  return cv.imencode('.jpg', m, [cv.IMWRITE_JPEG_QUALITY, 90]);
}

/** An APP1 segment holding an SOI ... EOI pair (as an EXIF thumbnail does), inserted after SOI. */
function withThumbnail(jpeg: Buffer): Buffer {
  const inner = Buffer.from([0xff, 0xd8, 0xff, 0xd9, 0x00, 0xff, 0xd9]);
  const seg = Buffer.alloc(4 + inner.length);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(2 + inner.length, 2);
  inner.copy(seg, 4);
  return Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]);
}

const ffmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

function makeVideo(out: string, args: string[]): string {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args, out]);
  assert.equal(r.status, 0, r.stderr.toString());
  return out;
}

describe('MJPEG stream splitting and decoding', () => {
  it('splits concatenated JPEG images exactly, whatever the chunk sizes; garbage is dropped and counted', () => {
    const images = [jpegOf(1), withThumbnail(jpegOf(2)), jpegOf(3), jpegOf(4)];
    const garbage = Buffer.from('xx\xff\xd9noise');
    const stream = Buffer.concat([garbage, images[0], images[1], garbage, images[2], images[3]] as Buffer[]);
    for (const chunk of [1, 7, 333, stream.length]) {
      const s = new JpegStreamSplitter();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += chunk) got.push(...s.push(stream.subarray(i, i + chunk)));
      assert.equal(got.length, 4, `chunk ${chunk}`);
      for (const [i, g] of got.entries())
        assert.ok(g.equals(images[i] as Buffer), `image ${i}, chunk ${chunk}`);
      assert.equal(s.skipped, 2 * garbage.length, `chunk ${chunk}`);
    }
    // The thumbnail's EOI did not end the image: it decodes as the original.
    const a = decodeJpeg(images[1] as Buffer);
    assert.deepEqual([a.cols, a.rows], [64, 48]);
  });

  it('an image cut short (in its headers or its scan) is not delivered; the next one is', () => {
    const whole = jpegOf(5);
    for (const at of [200, whole.length - 40]) {
      const s = new JpegStreamSplitter();
      const next = jpegOf(6);
      const got = s.push(Buffer.concat([whole.subarray(0, at), next]));
      assert.equal(got.length, 1, `cut at ${at} of ${whole.length}`);
      assert.ok((got[0] as Buffer).equals(next));
    }
  });

  it('a JPEG frame decodes at the scale asked, once; releasing it decodes nothing', async () => {
    const bytes = jpegOf(7, 640, 480);
    const img = new JpegImage(bytes, 640, 480);
    const small = await img.decode(4);
    assert.deepEqual([small.cols, small.rows], [160, 120]);
    assert.equal(await img.decode(4), small, 'cached');
    assert.equal(img.fullDecoded, false);
    const frame = new JpegFrame(img, Date.now(), 0, 1);
    assert.deepEqual([frame.width, frame.height], [640, 480]);
    const full = frame.mat;
    assert.ok(img.fullDecoded);
    assert.equal(full.getDataAsArray().length, 480);
    assert.ok(decodeJpeg(bytes).getData().equals(full.getData()), 'bit-identical to a plain full decode');
    releaseFrame(frame);
    const bad = new JpegImage(Buffer.from([0xff, 0xd8, 1, 2, 3, 4, 5]), 640, 480);
    await assert.rejects(
      bad.decode(2),
      (e: unknown) => e instanceof KioskError && e.code === ErrorCodes.CAMERA_READ_FAILED,
    );
  });

  it('a JPEG frame whose header declares another size than the stream is refused before any decode', async () => {
    const isRead = (e: unknown) => e instanceof KioskError && e.code === ErrorCodes.CAMERA_READ_FAILED;
    // A forged start-of-frame: 60000 x 60000 pixels would make the decoder allocate gigabytes.
    const forged = Buffer.from(jpegOf(3, 640, 480));
    let sof = -1;
    for (let i = 2; i + 9 < forged.length; i++)
      if (forged[i] === 0xff && forged[i + 1] === 0xc0) {
        sof = i;
        break;
      }
    assert.ok(sof > 0, 'the test image has a baseline start-of-frame');
    forged.writeUInt16BE(60000, sof + 5);
    forged.writeUInt16BE(60000, sof + 7);
    const img = new JpegImage(forged, 640, 480);
    await assert.rejects(
      img.decode(8),
      (e: unknown) => isRead(e) && /60000x60000/.test((e as Error).message),
    );
    assert.throws(() => img.full(), isRead);
    assert.throws(
      () => decodeJpeg(forged, 8),
      (e: unknown) => isRead(e) && /more than allowed/.test((e as Error).message),
    );
    // A real image of another size than the stream's: refused too, not decoded.
    const other = new JpegImage(jpegOf(4, 320, 240), 640, 480);
    await assert.rejects(other.decode(2), (e: unknown) => isRead(e) && /320x240/.test((e as Error).message));
    assert.equal(other.fullDecoded, false);
    // The same bytes at the stream's size decode.
    const ok = new JpegImage(jpegOf(4, 320, 240), 320, 240);
    assert.deepEqual([(await ok.decode(2)).cols, (await ok.decode(2)).rows], [160, 120]);
  });

  it("an MJPEG camera's frame without Huffman tables (the usual USB camera format) decodes as with them", () => {
    const m = new cv.Mat(48, 64, cv.CV_8UC3, [10, 120, 200]);
    m.getRegion(new cv.Rect(8, 8, 20, 20)).setTo(new cv.Vec3(250, 40, 0));
    const jpeg = cv.imencode('.jpg', m); // libjpeg's standard tables, which such cameras omit
    const kept: Buffer[] = [jpeg.subarray(0, 2)];
    for (let i = 2; i < jpeg.length; ) {
      const marker = jpeg[i + 1] as number;
      if (marker === 0xda) {
        kept.push(jpeg.subarray(i));
        break;
      }
      const end = i + 2 + jpeg.readUInt16BE(i + 2);
      if (marker !== 0xc4) kept.push(jpeg.subarray(i, end)); // DHT dropped
      i = end;
    }
    const stripped = Buffer.concat(kept);
    assert.ok(stripped.length < jpeg.length - 100, 'the tables were removed');
    assert.ok(decodeJpeg(stripped).getData().equals(decodeJpeg(jpeg).getData()));
  });

  it('cameras[].decode is auto by default and checked', () => {
    assert.equal(cameraSchema.parse({}).decode, 'auto');
    assert.equal(cameraSchema.parse({ decode: 'full' }).decode, 'full');
    assert.equal(cameraSchema.parse({ decode: 'reduced' }).decode, 'reduced');
    assert.throws(() => cameraSchema.parse({ decode: 'fast' }));
  });
});

describe('ffmpeg camera with an MJPEG source', {
  skip: ffmpeg ? false : 'needs ffmpeg on PATH',
}, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-mjpeg-'));
  const src = ['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-frames:v', '12'];
  const mjpeg = makeVideo(path.join(dir, 'test.avi'), [...src, '-c:v', 'mjpeg', '-q:v', '3']);
  const h264 = makeVideo(path.join(dir, 'test.mkv'), [...src, '-c:v', 'libx264', '-preset', 'ultrafast']);

  async function read(source: string, decode: 'auto' | 'full') {
    const cam = new FfmpegPipeCapture({ id: 'c', source, decode, lossless: true });
    await cam.open();
    const kinds: string[] = [];
    for await (const f of cam.frames()) {
      kinds.push(f.jpeg ? 'jpeg' : 'bgr');
      assert.deepEqual([f.width, f.height], [320, 240]);
      releaseFrame(f);
    }
    await cam.close();
    return { delivers: cam.delivers, frames: kinds.length, jpeg: kinds.filter((k) => k === 'jpeg').length };
  }

  it('auto: an MJPEG source hands over its JPEG images, every one; H.264 and decode full are decoded by ffmpeg', async () => {
    assert.deepEqual(await read(mjpeg, 'auto'), { delivers: 'jpeg', frames: 12, jpeg: 12 });
    assert.deepEqual(await read(h264, 'auto'), { delivers: 'bgr', frames: 12, jpeg: 0 });
    assert.deepEqual(await read(mjpeg, 'full'), { delivers: 'bgr', frames: 12, jpeg: 0 });
  });
});

describe('the pipeline on JPEG frames', {
  skip: ffmpeg ? false : 'needs ffmpeg on PATH (to make the MJPEG video)',
}, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-mjpeg-pipe-'));
  const sample = path.join(repoRoot, 'media/demo-kiosk.mp4');
  // The sample video at 1280x960 as an MJPEG camera sends it: the detector reads 1/4 decodes.
  const video = makeVideo(path.join(dir, 'sample.avi'), [
    '-i',
    sample,
    '-vf',
    'scale=1280:960',
    '-c:v',
    'mjpeg',
    '-q:v',
    '3',
  ]);
  const config = configSchema.parse({});
  let worker: InferenceWorker;
  let detector: FaceDetector;
  let liveness: LivenessModel;

  before(async () => {
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

  function pipelineFor(camera: CameraDriver, clock: { t: number }, decode: 'auto' | 'reduced' | 'full') {
    return new CameraPipeline({
      decode,
      cameraId: 'front',
      camera,
      detector,
      liveness,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      sink: { decision: () => {} },
      now: () => clock.t,
    });
  }

  /** Every frame through the pipeline on the video's own clock (15 fps). */
  async function decide(decode: 'auto' | 'reduced' | 'full') {
    const camera = createCamera(
      { ...cameraSchema.parse({}), kind: 'ffmpeg', source: video, decode },
      { repoRoot },
    );
    // Every frame, not the newest: the comparison must not depend on this machine's speed.
    (camera as unknown as { opts: { lossless: boolean } }).opts.lossless = true;
    const clock = { t: 0 };
    const pipeline = pipelineFor(camera, clock, decode);
    const decisions: SessionDecision[] = [];
    let frames = 0;
    let jpeg = 0;
    let fullDecodes = 0;
    await camera.open();
    for await (const f of camera.frames()) {
      frames++;
      clock.t = (f.seq * 1000) / 15;
      const timed: Frame = f.jpeg
        ? new JpegFrame(f.jpeg, f.capturedAt, clock.t, f.seq)
        : { ...f, capturedMono: clock.t };
      try {
        decisions.push(...(await pipeline.processFrame(timed)));
        if (f.jpeg) {
          jpeg++;
          if (f.jpeg.fullDecoded) fullDecodes++;
        }
      } finally {
        releaseFrame(f);
      }
    }
    await camera.close();
    return {
      frames,
      jpeg,
      fullDecodes,
      faces: pipeline.counters.faces,
      reduced: pipeline.counters.reducedFaceFrames,
      summary: decisions.map((d) => `${d.decision}/${d.reason}`),
    };
  }

  it('the scaled path decides the sample people as the full-decode path does', async () => {
    const full = await decide('full');
    const scaled = await decide('auto');
    assert.equal(full.jpeg, 0);
    assert.equal(scaled.jpeg, scaled.frames);
    assert.equal(scaled.frames, full.frames);
    assert.ok(full.summary.length >= 2, `the sample video gives several decisions: ${full.summary}`);
    assert.deepEqual(scaled.summary, full.summary);
    // Faces found on 1/4 decodes: within a few frames of the full path's count.
    assert.ok(
      Math.abs(scaled.faces - full.faces) <= Math.max(3, full.faces * 0.03),
      `${scaled.faces} vs ${full.faces}`,
    );
    // The full decode is made only for frames with a face (the sample has face-free frames).
    assert.ok(scaled.fullDecodes < scaled.frames, `${scaled.fullDecodes} of ${scaled.frames}`);
    assert.equal(scaled.reduced, 0, 'decode auto: the per-face step reads the full decode');
    // decode 'reduced': the per-face step reads a reduced decode where it serves the face,
    // with the same decisions on this video.
    const reduced = await decide('reduced');
    assert.ok(reduced.reduced > 0, 'some face frames read a reduced decode');
    assert.ok(reduced.fullDecodes < scaled.fullDecodes, `${reduced.fullDecodes} vs ${scaled.fullDecodes}`);
    assert.deepEqual(reduced.summary, full.summary);
  });

  it('a frame that does not decode is counted and skipped; the camera goes on to the next frames', async () => {
    const good = decodeJpeg(jpegOf(9, 640, 480)).copy();
    const goodBytes = cv.imencode('.jpg', good);
    const bytes = [goodBytes, Buffer.from([0xff, 0xd8, 0xff, 0xd9, 9, 9, 9, 9]), goodBytes, goodBytes];
    const clock = { t: 0 };
    const camera: CameraDriver = {
      info: { id: 'c', kind: 'ffmpeg', source: 'test', width: 640, height: 480, fps: 15 },
      open: async () => {},
      async *frames() {
        let seq = 0;
        for (const b of bytes) {
          seq++;
          clock.t = seq * 66;
          yield new JpegFrame(new JpegImage(b, 640, 480), Date.now(), clock.t, seq);
        }
      },
      stats: () => ({ captured: bytes.length, delivered: bytes.length, dropped: 0 }),
      close: async () => {},
    };
    const states: string[] = [];
    const pipeline = new CameraPipeline({
      cameraId: 'front',
      camera,
      detector,
      liveness,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      sink: { decision: () => {} },
      onState: (s) => states.push(s),
      // With the scene gate too: a JPEG frame's detection awaits its decode before the gate
      // looks, and the gate must then wait for the previous frame's detection, not its own.
      sceneGate: config.scene_gate,
      now: () => clock.t,
    });
    await pipeline.start();
    await pipeline.done();
    assert.equal(pipeline.counters.badFrames, 1);
    assert.equal(pipeline.counters.frames, 4);
    assert.equal(pipeline.counters.processed, 3, 'the frames after the bad one were processed');
    assert.ok(pipeline.counters.gated >= 1, 'the scene gate skipped a still frame');
    assert.ok(!states.includes('failed'), `states: ${states}`);
    assert.equal(states.at(-1), 'ended');
  });
});
