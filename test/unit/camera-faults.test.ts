/**
 * Bad inputs and hard cases for the capture drivers: missing, truncated and garbage sources,
 * a camera that does not exist, odd sizes, grey and 16-bit frames, 4K, and a consumer slower
 * than the camera (newest frame wins, memory stays bounded).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, isKioskError, KioskError } from '../../core/errors.js';
import { FakeCamera } from '../../drivers/camera/fake.js';
import { type CameraSpec, createCamera } from '../../drivers/camera/index.js';
import { OpenCvCapture } from '../../drivers/camera/opencv-capture.js';
import { StillImageSource } from '../../drivers/camera/still-image.js';
import {
  assertDropsAccounted,
  DEMO_FRAMES,
  DEMO_VIDEO,
  drain,
  needsFfmpeg,
  needsGStreamer,
  runFfmpeg,
} from '../helpers/camera-fixtures.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

const tmp = tempDir();
after(() => rmSync(tmp, { recursive: true, force: true }));

const base: Omit<CameraSpec, 'kind' | 'source'> = {
  id: 'cam',
  loop: false,
  realtime: false,
  width: null,
  height: null,
  fps: null,
};

function hasCode(code: KioskError['code']) {
  return (e: unknown) => {
    assert.ok(isKioskError(e, code), `expected ${code}, got ${String(e)}`);
    return true;
  };
}

describe('camera faults: sources that do not open', () => {
  it('a missing video file is KIOSK_E_CAMERA_NOT_FOUND, naming the resolved path', async () => {
    const camera = createCamera({ ...base, kind: 'file', source: 'media/no-such-video.mp4' }, { repoRoot });
    await assert.rejects(camera.open(), (e: unknown) => {
      hasCode(ErrorCodes.CAMERA_NOT_FOUND)(e);
      assert.match((e as Error).message, new RegExp(path.join(repoRoot, 'media/no-such-video.mp4')));
      return true;
    });
  });

  it('a garbage file is KIOSK_E_CAMERA_OPEN_FAILED', async () => {
    const garbage = path.join(tmp, 'garbage.mp4');
    const bytes = Buffer.alloc(64 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 251;
    writeFileSync(garbage, bytes);
    const camera = new OpenCvCapture({ id: 'g', kind: 'file', source: garbage });
    await assert.rejects(camera.open(), hasCode(ErrorCodes.CAMERA_OPEN_FAILED));
  });

  const damages: { name: string; damage: (bytes: Buffer) => Buffer }[] = [
    { name: 'cut in half', damage: (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)) },
    {
      name: 'overwritten in the middle',
      damage: (bytes) => {
        const out = Buffer.from(bytes);
        for (let i = 0; i < 40_000; i++) out[200_000 + i] = (i * 7919 + 13) % 251;
        return out;
      },
    },
  ];
  for (const { name, damage } of damages) {
    it(`a video ${name} never hangs: it fails to open or stops with KIOSK_E_CAMERA_READ_FAILED`, async () => {
      const file = path.join(tmp, `damaged-${name.replace(/\W+/g, '-')}.mp4`);
      writeFileSync(file, damage(readFileSync(path.join(repoRoot, DEMO_VIDEO))));
      const camera = new OpenCvCapture({ id: 'damaged', kind: 'file', source: file, realtime: false });
      let opened = false;
      let delivered = 0;
      try {
        await camera.open();
        opened = true;
        for await (const frame of camera.frames()) {
          frame.mat.release();
          delivered++;
        }
        assert.fail(`the damaged file ended normally after ${delivered} frames instead of reporting it`);
      } catch (e) {
        if (!opened) hasCode(ErrorCodes.CAMERA_OPEN_FAILED)(e);
        else {
          hasCode(ErrorCodes.CAMERA_READ_FAILED)(e);
          assert.ok(
            delivered > 0 && delivered < DEMO_FRAMES,
            `delivered ${delivered} frames before the error`,
          );
          assert.match((e as Error).message, /truncated or corrupt/);
        }
      } finally {
        await camera.close();
      }
    });
  }

  for (const source of ['/dev/video9', '9']) {
    it(`a V4L2 device that does not exist (${source}) is KIOSK_E_CAMERA_NOT_FOUND`, async () => {
      const camera = createCamera({ ...base, kind: 'v4l2', source }, { repoRoot });
      await assert.rejects(camera.open(), hasCode(ErrorCodes.CAMERA_NOT_FOUND));
    });
  }

  it('a broken GStreamer pipeline is KIOSK_E_CAMERA_OPEN_FAILED', { skip: needsGStreamer() }, async () => {
    const camera = createCamera(
      { ...base, kind: 'gstreamer', source: 'nosuchelement ! appsink' },
      { repoRoot },
    );
    await assert.rejects(camera.open(), hasCode(ErrorCodes.CAMERA_OPEN_FAILED));
  });

  it('an unknown kind is KIOSK_E_CAMERA_UNSUPPORTED and lists the valid kinds', () => {
    assert.throws(
      () => createCamera({ ...base, kind: 'webcam', source: 'x' }, { repoRoot }),
      (e: unknown) => {
        hasCode(ErrorCodes.CAMERA_UNSUPPORTED)(e);
        assert.match((e as Error).message, /valid kinds: file, v4l2, gstreamer, image, fake/);
        return true;
      },
    );
  });

  it('a fake camera can fail to open and fail mid-stream', async () => {
    const missing = new FakeCamera({ openError: new KioskError(ErrorCodes.CAMERA_NOT_FOUND, 'unplugged') });
    await assert.rejects(missing.open(), hasCode(ErrorCodes.CAMERA_NOT_FOUND));
    const flaky = new FakeCamera({ intervalMs: null, failAfter: 3, width: 32, height: 24 });
    await flaky.open();
    let delivered = 0;
    await assert.rejects(async () => {
      for await (const frame of flaky.frames()) {
        frame.mat.release();
        delivered++;
      }
    }, hasCode(ErrorCodes.CAMERA_READ_FAILED));
    assert.equal(delivered, 3);
    await flaky.close();
  });
});

describe('camera faults: odd, grey, 16-bit and 4K frames become 8-bit BGR', () => {
  const gst = needsGStreamer();
  const cases = [
    { caps: 'format=GRAY8,width=641,height=479', size: [641, 479], grey: true },
    { caps: 'format=GRAY16_LE,width=320,height=240', size: [320, 240], grey: true },
    { caps: 'format=BGRx,width=322,height=242', size: [322, 242], grey: false },
    { caps: 'format=BGR,width=3840,height=2160', size: [3840, 2160], grey: false },
  ];
  for (const c of cases) {
    it(`GStreamer ${c.caps}`, { skip: gst }, async () => {
      const source = `videotestsrc num-buffers=4 ! videoconvert ! video/x-raw,${c.caps} ! appsink`;
      const camera = createCamera({ ...base, kind: 'gstreamer', source }, { repoRoot });
      await camera.open();
      const frames = await drain(camera, 2);
      await camera.close();
      assert.equal(frames.length, 2);
      for (const f of frames) {
        assert.equal(f.type, cv.CV_8UC3);
        assert.deepEqual([f.width, f.height], c.size);
        const [b, g, r] = f.meanBgr;
        if (c.grey) assert.ok(b === g && g === r, `grey frame has equal channels (${f.meanBgr})`);
        else assert.ok(b !== g || g !== r, 'colour test pattern keeps its colours');
        assert.ok(b > 10, 'not a black frame (16-bit values scaled, not truncated)');
      }
    });
  }

  it('a grey 641x479 video file', { skip: needsFfmpeg() }, async () => {
    const file = path.join(tmp, 'grey-641x479.mkv');
    runFfmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=641x479:rate=15',
      '-frames:v',
      '6',
      '-c:v',
      'ffv1',
      '-pix_fmt',
      'gray',
      file,
    ]);
    const camera = new OpenCvCapture({ id: 'grey', kind: 'file', source: file, realtime: false });
    await camera.open();
    const frames = await drain(camera);
    await camera.close();
    assert.equal(frames.length, 6);
    for (const f of frames) {
      assert.equal(f.type, cv.CV_8UC3);
      assert.deepEqual([f.width, f.height], [641, 479]);
    }
  });

  const stills: { name: string; make: () => Mat; size: [number, number]; bgr: [number, number, number] }[] = [
    {
      name: '4K colour PNG',
      make: () => new cv.Mat(2160, 3840, cv.CV_8UC3).setTo(new cv.Vec3(30, 140, 220)),
      size: [3840, 2160],
      bgr: [30, 140, 220],
    },
    {
      name: 'grey PNG',
      make: () => new cv.Mat(479, 641, cv.CV_8UC1).setTo(90),
      size: [641, 479],
      bgr: [90, 90, 90],
    },
    {
      name: 'BGRA PNG',
      make: () => new cv.Mat(100, 120, cv.CV_8UC4).setTo(new cv.Vec4(10, 20, 30, 128)),
      size: [120, 100],
      bgr: [10, 20, 30],
    },
    {
      name: '16-bit grey PNG',
      make: () => new cv.Mat(64, 64, cv.CV_16UC1).setTo(40000),
      size: [64, 64],
      bgr: [156, 156, 156],
    },
  ];
  for (const s of stills) {
    it(`still image: ${s.name}`, async () => {
      const file = path.join(tmp, `${s.name.replace(/\W+/g, '-')}.png`);
      cv.imwrite(file, s.make());
      const camera = createCamera({ ...base, kind: 'image', source: file }, { repoRoot });
      await camera.open();
      const frames = await drain(camera);
      assert.equal(frames.length, 1);
      const f = frames[0];
      assert.ok(f);
      assert.equal(f.type, cv.CV_8UC3);
      assert.deepEqual([f.width, f.height], s.size);
      assert.deepEqual(
        f.meanBgr.map(Math.round),
        s.bgr,
        'grey copied to all channels, alpha dropped, 16 bits scaled',
      );
      assert.deepEqual(await drain(camera), [], 'a still image is one frame');
      await camera.close();
    });
  }

  it('a missing or undecodable still image is KIOSK_E_IMAGE_UNREADABLE', async () => {
    const garbage = path.join(tmp, 'garbage.jpg');
    writeFileSync(garbage, 'this is not a JPEG');
    for (const file of [path.join(tmp, 'missing.png'), garbage]) {
      await assert.rejects(new StillImageSource(file).open(), hasCode(ErrorCodes.IMAGE_UNREADABLE));
    }
  });

  it('a live source that stops delivering throws KIOSK_E_CAMERA_READ_FAILED', { skip: gst }, async () => {
    const source =
      'videotestsrc num-buffers=3 ! videoconvert ! video/x-raw,format=BGR,width=64,height=48 ! appsink';
    const camera = createCamera({ ...base, kind: 'gstreamer', source }, { repoRoot });
    await camera.open();
    await assert.rejects(drain(camera), hasCode(ErrorCodes.CAMERA_READ_FAILED));
    await camera.close();
  });
});

describe('camera faults: a consumer slower than the camera', () => {
  it('real-time video: frames are dropped and counted, never queued', async () => {
    const camera = createCamera(
      { ...base, kind: 'file', source: DEMO_VIDEO, loop: true, realtime: true },
      { repoRoot },
    );
    await camera.open();
    const frames = await drain(camera, 5, 200); // 200 ms per frame against a 15 fps source
    await camera.close();
    const s = camera.stats();
    assert.ok(s.dropped > 0, `dropped ${s.dropped}`);
    for (const f of frames) assert.ok(f.held <= 1);
    assertDropsAccounted(frames, s);
    assert.ok(
      frames.some((f, i) => i > 0 && f.seq - (frames[i - 1]?.seq ?? 0) > 1),
      'seq gaps show the drops',
    );
  });

  it('fake camera: every dropped frame is freed at once, so memory stays at one pending frame', async () => {
    const made: Mat[] = [];
    const camera = new FakeCamera({
      intervalMs: 2,
      images: () => {
        const mat = new cv.Mat(48, 64, cv.CV_8UC3).setTo(new cv.Vec3(1, 2, 3));
        made.push(mat);
        return mat;
      },
    });
    await camera.open();
    const frames = await drain(camera, 6, 25);
    await camera.close();
    const s = camera.stats();
    assert.ok(s.dropped > 0);
    assert.equal(made.length, s.captured);
    for (const f of frames) assert.ok(f.held <= 1);
    // drain() freed the delivered frames; the driver must have freed every other one.
    const alive = made.filter((m) => !m.empty).length;
    assert.equal(alive, 0, `${alive} of ${made.length} frames still hold pixels after close`);
  });
});
