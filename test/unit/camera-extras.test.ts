/**
 * The smaller capture pieces: the fswebcam snapshot fallback (run against a stand-in program,
 * since these machines have no camera; the real fswebcam is checked when installed), the
 * GStreamer pipeline examples, ffmpeg command lines and the `cameras` listing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cv } from '../../core/cv.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { listCameras, parseFormats } from '../../daemon/cli/cameras.js';
import { ffmpegArgs, parseOutputHeader, splitArgs } from '../../drivers/camera/ffmpeg-pipe.js';
import { FswebcamSnapshot } from '../../drivers/camera/fswebcam.js';
import { rtspPipeline, usbCameraPipeline } from '../../drivers/camera/gst-pipelines.js';
import { NodeWebcamSnapshot } from '../../drivers/camera/node-webcam.js';
import { SupervisedCamera } from '../../drivers/camera/supervised.js';
import { drain, needsGStreamer } from '../helpers/camera-fixtures.js';
import { tempDir } from '../helpers/temp.js';

const tmp = tempDir();
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('fswebcam snapshot fallback', () => {
  it('decodes one JPEG per snapshot at the configured low rate', async () => {
    const jpeg = path.join(tmp, 'snap.jpg');
    cv.imwrite(jpeg, new cv.Mat(120, 160, cv.CV_8UC3).setTo(new cv.Vec3(20, 120, 220)));
    const stand = path.join(tmp, 'fswebcam');
    // Records its arguments, then writes the JPEG to stdout like `fswebcam ... -`.
    writeFileSync(stand, `#!/bin/sh\necho "$@" > ${tmp}/args\ncat ${jpeg}\n`);
    chmodSync(stand, 0o755);
    const cam = new FswebcamSnapshot({
      id: 'w',
      device: jpeg,
      fps: 20,
      width: 160,
      height: 120,
      command: stand,
    });
    await cam.open();
    const frames = await drain(cam, 3);
    await cam.close();
    assert.equal(frames.length, 3);
    for (const f of frames) {
      assert.deepEqual([f.width, f.height], [160, 120]);
      assert.deepEqual(
        f.meanBgr.map((v) => Math.round(v / 10)),
        [2, 12, 22],
      );
    }
    assert.equal(cam.info.fps, 20);
  });

  it('a missing device is KIOSK_E_CAMERA_NOT_FOUND; a failing program is KIOSK_E_CAMERA_READ_FAILED', async () => {
    await assert.rejects(new FswebcamSnapshot({ id: 'w', device: '/dev/video77' }).open(), (e) =>
      isKioskError(e, ErrorCodes.CAMERA_NOT_FOUND),
    );
    const failing = path.join(tmp, 'fails');
    writeFileSync(failing, '#!/bin/sh\necho "Unable to find a compatible palette format." >&2\nexit 1\n');
    chmodSync(failing, 0o755);
    const cam = new FswebcamSnapshot({ id: 'w', device: failing, command: failing });
    await assert.rejects(
      cam.open(),
      (e) => isKioskError(e, ErrorCodes.CAMERA_READ_FAILED) && /palette/.test(String(e)),
    );
  });

  const hasFswebcam = spawnSync('fswebcam', ['--version']).status === 0;
  it('the real fswebcam without a camera fails cleanly', {
    skip: hasFswebcam
      ? false
      : 'needs fswebcam on PATH (Debian package fswebcam, an optional fallback), which is absent',
  }, async () => {
    const cam = new FswebcamSnapshot({ id: 'w', device: '/dev/null' });
    await assert.rejects(cam.open(), (e) => isKioskError(e));
  });
});

describe('node-webcam snapshot driver', () => {
  it('decodes one snapshot per interval through node-webcam, leaving no file behind', async () => {
    const jpeg = path.join(tmp, 'nw.jpg');
    cv.imwrite(jpeg, new cv.Mat(120, 160, cv.CV_8UC3).setTo(new cv.Vec3(200, 100, 20)));
    const stand = path.join(tmp, 'fake-fswebcam');
    // node-webcam runs `fswebcam ... <location>`: the stand-in records its arguments and
    // copies the JPEG to the location (its last argument).
    writeFileSync(
      stand,
      `#!/bin/sh\necho "$@" > ${tmp}/nw-args\nfor a; do last="$a"; done\ncp ${jpeg} "$last"\n`,
    );
    chmodSync(stand, 0o755);
    const cam = new NodeWebcamSnapshot({
      id: 'nw',
      device: '/dev/video0',
      fps: 20,
      width: 160,
      height: 120,
      command: stand,
    });
    await cam.open();
    const frames = await drain(cam, 3);
    const args = readFileSync(path.join(tmp, 'nw-args'), 'utf8');
    const shotDir = path.dirname(args.trim().split(' ').at(-1) as string);
    await cam.close();
    assert.equal(frames.length, 3);
    for (const f of frames) {
      assert.deepEqual([f.width, f.height], [160, 120]);
      assert.deepEqual(
        f.meanBgr.map((v) => Math.round(v / 10)),
        [20, 10, 2],
      );
    }
    assert.match(args, /-d \/dev\/video0/);
    assert.match(args, /-r 160x120/);
    assert.equal(existsSync(shotDir), false, 'the temporary directory is removed on close');
  });

  it('a failing tool is KIOSK_E_CAMERA_READ_FAILED; a device that would reach the shell is refused', async () => {
    const failing = path.join(tmp, 'nw-fails');
    writeFileSync(failing, '#!/bin/sh\necho "Unable to find a compatible palette format." >&2\nexit 1\n');
    chmodSync(failing, 0o755);
    await assert.rejects(
      new NodeWebcamSnapshot({ id: 'nw', device: '/dev/video0', command: failing }).open(),
      (e) => isKioskError(e, ErrorCodes.CAMERA_READ_FAILED),
    );
    await assert.rejects(
      new NodeWebcamSnapshot({ id: 'nw', device: '/dev/video0; touch /tmp/pwned', command: failing }).open(),
      (e) => isKioskError(e, ErrorCodes.CAMERA_UNSUPPORTED),
    );
  });

  it('runs supervised like every kind: a tool that fails at start is retried until frames flow', async () => {
    const jpeg = path.join(tmp, 'nw.jpg');
    const flaky = path.join(tmp, 'nw-flaky');
    // Fails twice (no camera yet), then delivers.
    writeFileSync(
      flaky,
      `#!/bin/sh\nn=$(cat ${tmp}/nw-count 2>/dev/null || echo 0); echo $((n+1)) > ${tmp}/nw-count\n` +
        `[ "$n" -lt 2 ] && { echo "No such device" >&2; exit 1; }\nfor a; do last="$a"; done\ncp ${jpeg} "$last"\n`,
    );
    chmodSync(flaky, 0o755);
    const events: string[] = [];
    const cam = new SupervisedCamera({
      id: 'nw',
      create: () => new NodeWebcamSnapshot({ id: 'nw', device: '/dev/video0', fps: 20, command: flaky }),
      stallTimeoutMs: 2000,
      minMs: 20,
      maxMs: 40,
      finite: false,
      onEvent: (e) => {
        events.push(e.type);
      },
    });
    await cam.open();
    const frames = await drain(cam, 2);
    await cam.close();
    assert.equal(frames.length, 2);
    assert.deepEqual(events.slice(0, 1), ['lost']);
    assert.ok(events.includes('restored'), events.join(','));
  });
});

describe('ffmpeg command line', () => {
  it('splits input options, adds TCP for rtsp:// and scales when asked', () => {
    assert.deepEqual(splitArgs(`-f lavfi -i "testsrc=size=64x48" -x 'a b'`), [
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=64x48',
      '-x',
      'a b',
    ]);
    const rtsp = ffmpegArgs({ source: 'rtsp://cam/s', width: 640, height: 480, fps: 15 });
    assert.deepEqual(rtsp.slice(rtsp.indexOf('-rtsp_transport'), rtsp.indexOf('-rtsp_transport') + 4), [
      '-rtsp_transport',
      'tcp',
      '-i',
      'rtsp://cam/s',
    ]);
    assert.ok(rtsp.join(' ').includes('-vf scale=640:480 -r 15 -f rawvideo -pix_fmt bgr24 pipe:1'));
  });

  it('reads the output size from the header, not from the input stream', () => {
    const text = `Input #0, lavfi\n  Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 320x240, 25 fps\nOutput #0, rawvideo, to 'pipe:1':\n  Stream #0:0: Video: rawvideo (BGR[24] / 0x18524742), bgr24(pc, gbr/unknown/unknown, progressive), 641x479 [SAR 1:1 DAR 641:479], q=2-31, 30 fps, 30 tbn\n`;
    assert.deepEqual(parseOutputHeader(text), { width: 641, height: 479, fps: 30 });
    assert.equal(parseOutputHeader(text.slice(0, text.indexOf('Output'))), null);
  });
});

describe('GStreamer pipeline examples', () => {
  it('USB (MJPEG and YUYV) and RTSP pipelines name only installed elements', {
    skip: needsGStreamer(),
  }, () => {
    const pipelines = [
      usbCameraPipeline({ device: '/dev/video0', width: 1280, height: 720, fps: 30 }),
      usbCameraPipeline({ device: '/dev/video0', width: 640, height: 480, fps: 30, format: 'yuyv' }),
      rtspPipeline({ url: 'rtsp://camera.local/stream', latencyMs: 100 }),
    ];
    for (const p of pipelines) {
      assert.match(p, /appsink drop=true max-buffers=1/);
      for (const element of p.split('!').map((s) => s.trim().split(/\s/)[0] as string)) {
        if (/[/(]/.test(element)) continue; // caps, not an element
        assert.equal(
          spawnSync('gst-inspect-1.0', ['--exists', element]).status,
          0,
          `${element} is installed`,
        );
      }
    }
    assert.match(rtspPipeline({ url: 'rtsp://c/s' }), /protocols=tcp/);
  });
});

describe('fghv-kiosk cameras', () => {
  it('parses v4l2-ctl --list-formats-ext', () => {
    const text = `ioctl: VIDIOC_ENUM_FMT\n\tType: Video Capture\n\n\t[0]: 'MJPG' (Motion-JPEG, compressed)\n\t\tSize: Discrete 1280x720\n\t\t\tInterval: Discrete 0.033s (30.000 fps)\n\t\tSize: Discrete 640x480\n\t\t\tInterval: Discrete 0.033s (30.000 fps)\n\t\t\tInterval: Discrete 0.067s (15.000 fps)\n\t[1]: 'YUYV' (YUYV 4:2:2)\n\t\tSize: Discrete 640x480\n\t\t\tInterval: Discrete 0.033s (30.000 fps)\n`;
    assert.deepEqual(parseFormats(text), [
      { format: 'MJPG', sizes: ['1280x720@30', '640x480@30,15'] },
      { format: 'YUYV', sizes: ['640x480@30'] },
    ]);
  });

  it('says "no video devices" on a machine without cameras, and lists the backends', () => {
    const out = listCameras(tmp);
    assert.match(out, /no video devices/);
    assert.match(out, /ffmpeg: /);
    assert.match(out, /gstreamer: /);
  });
});
