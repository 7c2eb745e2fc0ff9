/**
 * One contract, every driver: the same suite runs against the file driver (demo video and a
 * short clip; once and loop; real-time and fast), a GStreamer test pipeline, ffmpeg raw pipes
 * (lavfi test sources, a live HTTP stream served by a local ffmpeg), the supervisor and the fake.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cv } from '../../core/cv.js';
import { FakeCamera } from '../../drivers/camera/fake.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { createCamera } from '../../drivers/camera/index.js';
import { OpenCvCapture } from '../../drivers/camera/opencv-capture.js';
import { SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { CameraDriver } from '../../drivers/camera/types.js';
import {
  assertDropsAccounted,
  DEMO_FRAMES,
  DEMO_VIDEO,
  drain,
  needsFfmpeg,
  needsGStreamer,
  writeClip,
} from '../helpers/camera-fixtures.js';
import { repoRoot } from '../helpers/paths.js';
import { freePort, type HttpStream, startHttpStream } from '../helpers/stream-server.js';
import { tempDir } from '../helpers/temp.js';

interface ContractCase {
  name: string;
  make: () => CameraDriver;
  /** Frames a finite source delivers before ending; undefined: endless (loop, live). */
  total?: number;
  /** Frames to take from an endless source. */
  take?: number;
  /** Minimum spacing of captures for paced sources, ms (checked as a lower bound only). */
  pacedMs?: number;
  skip?: false | string;
}

function cameraContract(c: ContractCase): void {
  describe(`camera contract: ${c.name}`, { skip: c.skip ?? false }, () => {
    it('refuses frames() before open()', () => {
      assert.throws(() => c.make().frames());
    });

    it('delivers 8-bit BGR frames with increasing seq, stamps and consistent stats', async () => {
      const camera = c.make();
      await camera.open();
      const started = Date.now();
      const frames = await drain(camera, c.take);
      await camera.close();
      const s = camera.stats();
      // A paced source may drop a frame on a busy machine; a finite one still captures them all.
      if (c.total === undefined) assert.equal(frames.length, c.take);
      else assert.equal(frames.length + s.dropped, c.total);
      let prev: (typeof frames)[number] | undefined;
      for (const f of frames) {
        assert.equal(f.type, cv.CV_8UC3, `frame ${f.seq} is CV_8UC3`);
        assert.deepEqual([f.width, f.height], [f.matWidth, f.matHeight]);
        assert.ok(f.capturedAt >= started - 5000 && f.capturedAt <= Date.now());
        assert.ok(f.held === 0 || f.held === 1, 'at most one frame waits in the slot');
        if (prev) {
          assert.ok(f.seq > prev.seq, 'seq increases');
          assert.ok(f.capturedMono >= prev.capturedMono, 'monotonic stamps do not go back');
        }
        prev = f;
      }
      const first = frames[0];
      assert.ok(first);
      assert.deepEqual([camera.info.width, camera.info.height], [first.width, first.height]);
      if (c.pacedMs && frames.length > 2 && prev) {
        const span = prev.capturedMono - first.capturedMono;
        const minimum = (prev.seq - first.seq) * c.pacedMs * 0.8;
        assert.ok(span >= minimum, `paced source delivered ${prev.seq - first.seq} intervals in ${span} ms`);
      }
      assert.equal(s.delivered, frames.length);
      assertDropsAccounted(frames, s);
      assert.ok(s.captured >= s.delivered + s.dropped);
    });

    const total = c.total;
    if (total !== undefined) {
      it('ends the stream after the last frame and reports the end', async () => {
        const camera = c.make() as CameraDriver & { ended?: boolean };
        await camera.open();
        const frames = await drain(camera);
        assert.equal(camera.stats().captured, total);
        assert.equal(frames.length, total - camera.stats().dropped);
        assert.equal(camera.ended, true);
        assert.deepEqual(await drain(camera), [], 'an ended stream stays ended');
        await camera.close();
      });
    }

    it('close() ends an iteration in progress and can be repeated', async () => {
      const camera = c.make();
      await camera.open();
      const iterating = drain(camera);
      await camera.close();
      const frames = await iterating;
      assert.ok(frames.length <= (c.total ?? Number.POSITIVE_INFINITY));
      await camera.close();
    });
  });
}

const tmp = tempDir();
const clip = path.join(tmp, 'clip-20f-50fps.mp4');
const CLIP_FRAMES = 20;
before(() => writeClip(clip, CLIP_FRAMES, 50));
after(() => rmSync(tmp, { recursive: true, force: true }));

const demo = { id: 'front', source: DEMO_VIDEO, width: null, height: null, fps: null };

cameraContract({
  name: 'file, demo video, once, fast',
  make: () => createCamera({ ...demo, kind: 'file', loop: false, realtime: false }, { repoRoot }),
  total: DEMO_FRAMES,
});
cameraContract({
  name: 'file, demo video, loop, real time',
  make: () => createCamera({ ...demo, kind: 'file', loop: true, realtime: true }, { repoRoot }),
  take: 8,
  pacedMs: 1000 / 15,
});
cameraContract({
  name: 'file, short clip, once, real time',
  make: () => new OpenCvCapture({ id: 'clip', kind: 'file', source: clip, loop: false, realtime: true }),
  total: CLIP_FRAMES,
  pacedMs: 20,
});
cameraContract({
  name: 'file, short clip, loop, fast',
  make: () => new OpenCvCapture({ id: 'clip', kind: 'file', source: clip, loop: true, realtime: false }),
  take: 3 * CLIP_FRAMES + 5,
});
cameraContract({
  name: 'gstreamer, videotestsrc',
  make: () =>
    createCamera(
      {
        ...demo,
        kind: 'gstreamer',
        source:
          'videotestsrc num-buffers=30 ! videoconvert ! video/x-raw,format=BGR,width=320,height=240 ! appsink',
        loop: false,
        realtime: true,
      },
      { repoRoot },
    ),
  take: 10,
  skip: needsGStreamer(),
});
cameraContract({
  name: 'fake, paced (push)',
  make: () => new FakeCamera({ count: 12, intervalMs: 5 }),
  total: 12,
  pacedMs: 5,
});
cameraContract({
  name: 'fake, on demand (pull)',
  make: () => new FakeCamera({ count: 7, intervalMs: null, width: 64, height: 48 }),
  total: 7,
});
cameraContract({
  name: 'fake from config, endless',
  make: () => createCamera({ ...demo, kind: 'fake', loop: true, realtime: true, fps: 100 }, { repoRoot }),
  take: 6,
});
cameraContract({
  name: 'ffmpeg pipe, lavfi testsrc 641x479, 20 frames as fast as ffmpeg goes',
  make: () =>
    new FfmpegPipeCapture({ id: 'lavfi', source: '-f lavfi -i testsrc=size=641x479:rate=30 -frames:v 20' }),
  total: 20,
  skip: needsFfmpeg(),
});
cameraContract({
  name: 'ffmpeg pipe, lavfi testsrc, real time (-re), endless',
  make: () => new FfmpegPipeCapture({ id: 'lavfi', source: '-re -f lavfi -i testsrc=size=320x240:rate=50' }),
  take: 8,
  pacedMs: 20,
  skip: needsFfmpeg(),
});
cameraContract({
  name: 'supervised fake, finite',
  make: () =>
    new SupervisedCamera({
      id: 'sup',
      create: () => new FakeCamera({ count: 9, intervalMs: 5 }),
      stallTimeoutMs: 2000,
      minMs: 50,
      maxMs: 200,
      finite: true,
    }),
  total: 9,
  pacedMs: 5,
});

// A live HTTP camera: every driver instance gets its own one-client ffmpeg server. Supervised,
// so a client that connects before the server listens simply retries.
const streams: HttpStream[] = [];
const ports: number[] = [];
before(async () => {
  if (needsFfmpeg()) return;
  for (let i = 0; i < 4; i++) ports.push(await freePort());
});
after(async () => {
  for (const s of streams) await s.kill();
});
cameraContract({
  name: 'ffmpeg pipe, live HTTP MPEG-TS stream (supervised)',
  make: () => {
    const port = ports.shift();
    assert.ok(port, 'a free port was reserved');
    const stream = startHttpStream(port, { rate: 25 });
    streams.push(stream);
    return new SupervisedCamera({
      id: 'http',
      create: () => new FfmpegPipeCapture({ id: 'http', source: stream.source, openTimeoutMs: 5000 }),
      stallTimeoutMs: 3000,
      minMs: 100,
      maxMs: 400,
      finite: false,
    });
  },
  take: 6,
  skip: needsFfmpeg(),
});
