/**
 * Capture faults with real processes: a live HTTP camera (a local ffmpeg server) killed
 * mid-stream and started again, reconnection observed and its time measured; and the ffmpeg
 * raw pipe on odd sizes, grey, 4K, damaged files and a burst faster than the consumer.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ErrorCodes, isKioskError } from '../../daemon/errors.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { type SourceEvent, SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { Frame } from '../../drivers/camera/types.js';
import { repoRoot } from '../helpers/paths.js';
import { freePort, type HttpStream, startHttpStream } from '../helpers/stream-server.js';
import {
  assertDropsAccounted,
  DEMO_VIDEO,
  drain,
  needsFfmpeg,
  sleep,
  tempDir,
} from '../unit/camera-fixtures.js';

const skip = needsFfmpeg();
const tmp = tempDir();
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('a live HTTP camera that disappears and comes back', { skip }, () => {
  const servers: HttpStream[] = [];
  after(async () => {
    for (const s of servers) await s.kill();
  });

  it('is reported lost, reconnected with backoff and restored; frames flow again', async (t) => {
    const port = await freePort();
    servers.push(startHttpStream(port, { rate: 25 }));
    const source = (servers[0] as HttpStream).source;
    const events: (SourceEvent & { at: number })[] = [];
    const cam = new SupervisedCamera({
      id: 'door',
      create: () => new FfmpegPipeCapture({ id: 'door', source, openTimeoutMs: 5000 }),
      stallTimeoutMs: 2000,
      minMs: 100,
      maxMs: 400,
      finite: false,
      onEvent: (e) => {
        events.push({ ...e, at: performance.now() });
      },
    });
    const frames: { seq: number; at: number }[] = [];
    let iterError: unknown = null;
    try {
      await cam.open();
      const iterating = (async () => {
        for await (const f of cam.frames() as AsyncIterable<Frame>) {
          frames.push({ seq: f.seq, at: performance.now() });
          f.mat.release();
        }
      })().catch((e) => {
        iterError = e;
      });
      const waitFor = async (what: string, cond: () => boolean, ms: number) => {
        const t0 = Date.now();
        while (!cond()) {
          assert.ok(Date.now() - t0 < ms, `timed out waiting for ${what}`);
          await sleep(20);
        }
      };
      await waitFor('first frames', () => frames.length >= 5, 15_000);
      // The client may have connected before the server listened: only events from here count.
      const mark = events.length;
      const later = () => events.slice(mark);
      await (servers[0] as HttpStream).kill();
      await waitFor('the loss', () => later().some((e) => e.type === 'lost'), 10_000);
      const lost = later().find((e) => e.type === 'lost');
      assert.ok(lost?.type === 'lost' && ['ended', 'failed', 'stalled'].includes(lost.reason));
      assert.equal(cam.connected, false);
      await sleep(800); // several failed attempts against a closed port
      const before = frames.length;
      const restartAt = performance.now();
      servers.push(startHttpStream(port, { rate: 25 }));
      await waitFor('frames after the restart', () => frames.length >= before + 3, 15_000);
      const restored = later().find((e) => e.type === 'restored');
      assert.ok(restored?.type === 'restored', 'a restored event');
      assert.ok(restored.attempts >= 2, `failed attempts were made while down (${restored.attempts})`);
      const firstAfter = frames[before] as { at: number };
      const ms = Math.round(firstAfter.at - restartAt);
      t.diagnostic(
        `source back -> first frame: ${ms} ms (down ${restored.downMs} ms, ${restored.attempts} attempts)`,
      );
      assert.ok(ms >= 0);
      await cam.close();
      await iterating;
      assert.equal(iterError, null);
    } finally {
      await cam.close();
    }
  });
});

describe('ffmpeg raw pipe: hard frames', { skip }, () => {
  const lavfi = (spec: string, n: number, extra = '') =>
    new FfmpegPipeCapture({ id: 'lavfi', source: `-f lavfi -i ${spec} ${extra} -frames:v ${n}` });

  it('odd size 641x479 arrives with exact frame boundaries', async () => {
    const cam = lavfi('testsrc=size=641x479:rate=30', 5);
    await cam.open();
    const frames = await drain(cam);
    await cam.close();
    assert.equal(frames.length + cam.stats().dropped, 5);
    for (const f of frames) assert.deepEqual([f.matWidth, f.matHeight], [641, 479]);
    // testsrc draws the same pattern each frame except the counter: a mis-sliced frame shifts the means.
    const means = frames.map((f) => f.meanBgr.map(Math.round).join());
    assert.ok(new Set(means).size <= 3, `frames look alike when sliced right: ${means}`);
  });

  it('grey input becomes BGR with equal channels', async () => {
    const cam = lavfi('testsrc=size=320x240:rate=30', 3, '-vf format=gray');
    await cam.open();
    const frames = await drain(cam);
    await cam.close();
    assert.ok(frames.length >= 1);
    for (const f of frames) {
      const [b, g, r] = f.meanBgr;
      assert.ok(b === g && g === r && b > 10, `grey: ${f.meanBgr}`);
    }
  });

  it('4K frames', async () => {
    const cam = lavfi('testsrc=size=3840x2160:rate=30', 3);
    await cam.open();
    const frames = await drain(cam);
    await cam.close();
    assert.ok(frames.length >= 1);
    for (const f of frames) assert.deepEqual([f.width, f.height], [3840, 2160]);
  });

  it('a burst faster than the consumer: frames are dropped and counted, never queued', async () => {
    const cam = new FfmpegPipeCapture({ id: 'burst', source: '-f lavfi -i testsrc=size=640x480:rate=1000' });
    await cam.open();
    const frames = await drain(cam, 6, 50);
    await cam.close();
    const s = cam.stats();
    assert.equal(frames.length, 6);
    assert.ok(s.dropped > 0, `dropped ${s.dropped}`);
    for (const f of frames) assert.ok(f.held <= 1);
    assertDropsAccounted(frames, s);
  });

  it('a missing file is KIOSK_E_CAMERA_NOT_FOUND; a damaged one never hangs', async () => {
    const missing = new FfmpegPipeCapture({ id: 'm', source: path.join(tmp, 'none.mp4') });
    await assert.rejects(missing.open(), (e) => isKioskError(e, ErrorCodes.CAMERA_NOT_FOUND));
    const cut = path.join(tmp, 'cut.mp4');
    const bytes = readFileSync(path.join(repoRoot, DEMO_VIDEO));
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const damaged = new FfmpegPipeCapture({ id: 'd', source: cut, openTimeoutMs: 5000 });
    try {
      await damaged.open();
      await drain(damaged).catch((e) => assert.ok(isKioskError(e, ErrorCodes.CAMERA_READ_FAILED)));
    } catch (e) {
      assert.ok(isKioskError(e, ErrorCodes.CAMERA_OPEN_FAILED), String(e));
    } finally {
      await damaged.close();
    }
  });
});
