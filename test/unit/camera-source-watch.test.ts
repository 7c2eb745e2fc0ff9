/**
 * Noticing a camera source come back: what is watched per source kind; the path watch (inotify,
 * a parent directory that does not exist yet) and the TCP probe; the supervisor reopening the
 * moment a file or a live stream is back although its backoff is ten minutes; a probe that
 * succeeds while the open fails falling back to the backoff; and a source flapping twenty
 * times without leaking watchers, sockets or timers, with one lost/restored pair per outage.
 * No timing is asserted: each wait has a generous limit and the backoffs are far longer.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { FakeCamera } from '../../drivers/camera/fake.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { createCamera } from '../../drivers/camera/index.js';
import { createSourceWatch, type SourceWatch, sourceTarget } from '../../drivers/camera/source-watch.js';
import { type SourceEvent, SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { CameraDriver, CaptureStats, Frame } from '../../drivers/camera/types.js';
import { DEMO_VIDEO, needsFfmpeg } from '../helpers/camera-fixtures.js';
import { repoRoot } from '../helpers/paths.js';
import { freePort, type HttpStream, startHttpStream } from '../helpers/stream-server.js';
import { tempDir } from '../helpers/temp.js';
import { sleep } from '../helpers/wait.js';

const tmp = tempDir();
after(() => rmSync(tmp, { recursive: true, force: true }));

const TEN_MINUTES = 600_000;

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    assert.ok(Date.now() - t0 < ms, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Pulls frames in the background until closed; counts them. */
function consume(cam: CameraDriver): { count: () => number; done: Promise<unknown> } {
  let n = 0;
  const done = (async () => {
    for await (const f of cam.frames() as AsyncIterable<Frame>) {
      n++;
      f.mat.release();
    }
  })().catch((e) => e);
  return { count: () => n, done };
}

describe('source targets', () => {
  it('watches paths for files and devices, host:port for network URLs, nothing otherwise', () => {
    const t = (kind: string, source: string) => sourceTarget(kind, source, '/srv/kiosk');
    assert.deepEqual(t('file', 'media/a.mp4'), { type: 'path', path: '/srv/kiosk/media/a.mp4' });
    assert.deepEqual(t('v4l2', '0'), { type: 'path', path: '/dev/video0' });
    assert.deepEqual(t('v4l2', '/dev/v4l/by-id/usb-cam'), { type: 'path', path: '/dev/v4l/by-id/usb-cam' });
    assert.deepEqual(t('fswebcam', '2'), { type: 'path', path: '/dev/video2' });
    assert.deepEqual(t('node-webcam', '/dev/video1'), { type: 'path', path: '/dev/video1' });
    assert.equal(t('node-webcam', 'default'), null, 'the platform tool picks the device: backoff');
    assert.equal(t('v4l2', 'video0'), null, 'not an absolute path: not watched, backoff');
    assert.deepEqual(t('rtsp', 'rtsp://user:pw@10.0.0.7/stream1'), {
      type: 'tcp',
      host: '10.0.0.7',
      port: 554,
    });
    assert.deepEqual(t('ffmpeg', '-fflags nobuffer -i http://127.0.0.1:8080/live.ts'), {
      type: 'tcp',
      host: '127.0.0.1',
      port: 8080,
    });
    assert.deepEqual(t('ffmpeg', '-f v4l2 -i /dev/video1'), { type: 'path', path: '/dev/video1' });
    assert.deepEqual(t('ffmpeg', 'https://[fd00::5]/cam'), { type: 'tcp', host: 'fd00::5', port: 443 });
    assert.deepEqual(t('gstreamer', 'filesrc location=/data/x.mp4 ! decodebin ! videoconvert ! appsink'), {
      type: 'path',
      path: '/data/x.mp4',
    });
    assert.deepEqual(
      t('gstreamer', 'rtspsrc location=rtsp://cam.lan:8554/a latency=0 ! decodebin ! appsink'),
      {
        type: 'tcp',
        host: 'cam.lan',
        port: 8554,
      },
    );
    assert.deepEqual(t('gstreamer', 'v4l2src device=/dev/video3 ! videoconvert ! appsink'), {
      type: 'path',
      path: '/dev/video3',
    });
    assert.deepEqual(t('gstreamer', 'uridecodebin uri=file:///data/y%20z.mp4 ! appsink'), {
      type: 'path',
      path: '/data/y z.mp4',
    });
    assert.equal(t('gstreamer', 'videotestsrc ! appsink'), null, 'nothing to watch: backoff');
    assert.equal(t('ffmpeg', '-i udp://239.0.0.1:5000'), null, 'udp cannot be probed with a connect');
    assert.equal(t('fake', ''), null);
  });
});

describe('path watch', { timeout: 180_000 }, () => {
  it('resolves when the file appears under a parent directory that did not exist yet (inotify, no poll)', async () => {
    const file = path.join(tmp, 'later', 'deeper', 'cam.mp4');
    // A safety poll of an hour: only the inotify watch can notice the file in this test.
    const w = createSourceWatch({ type: 'path', path: file }, { pathPollMs: 3_600_000 });
    assert.equal(await w.present(), false);
    const ac = new AbortController();
    let seen = false;
    const waiting = w.untilPresent(ac.signal).then((v) => {
      seen = v;
    });
    await sleep(100);
    mkdirSync(path.dirname(file), { recursive: true });
    await sleep(100);
    copyFileSync(path.join(repoRoot, DEMO_VIDEO), `${file}.part`);
    renameSync(`${file}.part`, file);
    await waiting; // the test timeout bounds it
    assert.equal(seen, true, 'the watch saw the file');
    ac.abort();
  });

  it('an aborted wait resolves false and leaves no watcher or timer behind', async () => {
    const before = resourceCounts();
    const w = createSourceWatch({ type: 'path', path: path.join(tmp, 'never', 'there.mp4') });
    const ac = new AbortController();
    const waiting = w.untilPresent(ac.signal);
    await sleep(50);
    ac.abort();
    assert.equal(await waiting, false);
    await assertNoLeak(before);
  });
});

describe('tcp watch', { timeout: 180_000 }, () => {
  it('probes until a server listens, then resolves; closes every probe socket', async () => {
    const port = await freePort();
    const before = resourceCounts();
    const w = createSourceWatch({ type: 'tcp', host: '127.0.0.1', port }, { probeIntervalMs: 50 });
    assert.equal(await w.present(), false);
    const ac = new AbortController();
    let seen = false;
    const waiting = w.untilPresent(ac.signal).then((v) => {
      seen = v;
    });
    await sleep(200);
    assert.equal(seen, false);
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    await waiting; // the test timeout bounds it
    assert.equal(seen, true);
    await new Promise<void>((r) => server.close(() => r()));
    await assertNoLeak(before);
  });
});

describe('supervisor with a source watch', { timeout: 180_000 }, () => {
  it('a file camera missing at start opens the moment the file appears, not after its 10-minute backoff', async () => {
    const file = path.join(tmp, 'appears', 'front.mp4');
    const events: SourceEvent[] = [];
    const cam = new SupervisedCamera({
      id: 'front',
      create: () =>
        createCamera(
          {
            id: 'front',
            kind: 'file',
            source: file,
            loop: true,
            realtime: true,
            width: null,
            height: null,
            fps: null,
          },
          { repoRoot },
        ),
      stallTimeoutMs: 5000,
      minMs: TEN_MINUTES,
      maxMs: TEN_MINUTES,
      finite: false,
      watch: createSourceWatch(sourceTarget('file', file, repoRoot) as never),
      onEvent: (e) => {
        events.push(e);
      },
    });
    await cam.open();
    assert.equal(cam.connected, false);
    const frames = consume(cam);
    await waitFor('the supervisor waiting for the source', () => cam.recovery()?.waitingFor === 'source');
    assert.equal(
      cam.recovery()?.nextAttemptInMs,
      null,
      'no timer: the next attempt is the source coming back',
    );
    mkdirSync(path.dirname(file), { recursive: true });
    copyFileSync(path.join(repoRoot, DEMO_VIDEO), `${file}.part`);
    renameSync(`${file}.part`, file);
    await waitFor('frames after the file appeared', () => frames.count() >= 3);
    await cam.close();
    await frames.done;
    assert.deepEqual(
      events.map((e) => e.type),
      ['lost', 'restored'],
    );
    assert.equal(cam.recovery(), null);
  });

  it('a live HTTP stream killed and restarted is reopened when its port answers again', {
    skip: needsFfmpeg(),
  }, async () => {
    const port = await freePort();
    let server: HttpStream = startHttpStream(port, { rate: 25 });
    const events: SourceEvent[] = [];
    const cam = new SupervisedCamera({
      id: 'door',
      create: () => new FfmpegPipeCapture({ id: 'door', source: server.source, openTimeoutMs: 10_000 }),
      stallTimeoutMs: 3000,
      minMs: TEN_MINUTES,
      maxMs: TEN_MINUTES,
      finite: false,
      watch: createSourceWatch(sourceTarget('ffmpeg', server.source, repoRoot) as never, {
        probeIntervalMs: 100,
      }),
      onEvent: (e) => {
        events.push(e);
      },
    });
    try {
      await cam.open();
      const frames = consume(cam);
      await waitFor('first frames', () => frames.count() >= 3);
      await server.kill();
      await waitFor('the loss', () => events.some((e) => e.type === 'lost'));
      await waitFor('waiting for the source', () => cam.recovery()?.waitingFor === 'source');
      const before = frames.count();
      server = startHttpStream(port, { rate: 25 });
      await waitFor('frames after the server came back', () => frames.count() >= before + 3);
      await cam.close();
      await frames.done;
      assert.deepEqual(
        events.map((e) => e.type),
        ['lost', 'restored'],
      );
    } finally {
      await cam.close();
      await server.kill();
    }
  });

  it('a probe that succeeds while the open fails falls back to the exponential backoff', async () => {
    const events: SourceEvent[] = [];
    let untilPresentCalls = 0;
    const alwaysThere: SourceWatch = {
      description: 'test',
      present: async () => true,
      untilPresent: async () => {
        untilPresentCalls++;
        return true;
      },
    };
    let opens = 0;
    const cam = new SupervisedCamera({
      id: 'cam',
      create: () => {
        opens++;
        // 1: the constructor's probe; 2..4: the device exists but cannot stream; then it works.
        return opens <= 4
          ? new FakeCamera({ openError: new KioskError(ErrorCodes.CAMERA_OPEN_FAILED, 'busy') })
          : new FakeCamera({ intervalMs: 5, width: 32, height: 24 });
      },
      stallTimeoutMs: 2000,
      minMs: 40,
      maxMs: 10_000,
      finite: false,
      random: () => 0.5,
      watch: alwaysThere,
      onEvent: (e) => {
        events.push(e);
      },
    });
    await cam.open();
    const seen: { waitingFor: string; nextAttemptInMs: number | null }[] = [];
    const frames = consume(cam);
    while (frames.count() < 3) {
      const r = cam.recovery();
      if (r && r.waitingFor !== 'opening')
        seen.push({ waitingFor: r.waitingFor, nextAttemptInMs: r.nextAttemptInMs });
      await sleep(5);
      assert.ok(opens < 50, 'bounded');
    }
    await cam.close();
    await frames.done;
    assert.equal(untilPresentCalls, 0, 'the source was there: nothing to wait for');
    assert.ok(seen.length > 0 && seen.every((s) => s.waitingFor === 'backoff'), JSON.stringify(seen));
    assert.ok(seen.every((s) => s.nextAttemptInMs !== null && s.nextAttemptInMs <= 160));
    const restored = events.find((e) => e.type === 'restored');
    assert.ok(restored?.type === 'restored' && restored.attempts === 3, JSON.stringify(restored));
    assert.deepEqual(
      events.map((e) => e.type),
      ['lost', 'restored'],
      'one lost/restored pair for the whole outage',
    );
  });

  it('a source flapping (up 1 s, down 1 s, twenty times) leaks no handle and reports one pair per outage', async () => {
    const port = await freePort();
    const gate = new Gate();
    const before = resourceCounts();
    const events: SourceEvent[] = [];
    const cam = new SupervisedCamera({
      id: 'flap',
      create: () => new GatedCamera(gate),
      stallTimeoutMs: 5000,
      minMs: TEN_MINUTES,
      maxMs: TEN_MINUTES,
      finite: false,
      watch: createSourceWatch({ type: 'tcp', host: '127.0.0.1', port }, { probeIntervalMs: 100 }),
      onEvent: (e) => {
        events.push(e);
      },
    });
    let server: net.Server | null = null;
    const up = async () => {
      server = net.createServer((s) => s.destroy());
      await new Promise<void>((r) => server?.listen(port, '127.0.0.1', r));
      gate.up = true;
    };
    const down = async () => {
      gate.down();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server = null;
    };
    await up();
    await cam.open();
    const frames = consume(cam);
    for (let i = 0; i < 20; i++) {
      const n = frames.count();
      await waitFor(`frames in up phase ${i}`, () => frames.count() > n);
      await sleep(1000);
      await down();
      await waitFor(`loss ${i}`, () => events.filter((e) => e.type === 'lost').length === i + 1);
      await sleep(1000);
      await up();
    }
    const n = frames.count();
    await waitFor('frames after the last flap', () => frames.count() > n);
    await cam.close();
    await frames.done;
    await down();
    const lost = events.filter((e) => e.type === 'lost').length;
    const restored = events.filter((e) => e.type === 'restored').length;
    assert.equal(lost, 20, 'one lost per outage');
    assert.equal(restored, 20, 'one restored per outage');
    assert.equal(cam.restores, 20);
    await assertNoLeak(before);
  });
});

/** Counts of the handle kinds a watch could leak: inotify watchers, sockets, servers, timers. */
function resourceCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

/** Handles close asynchronously: give them up to 5 s to go, then compare. */
async function assertNoLeak(before: Record<string, number>): Promise<void> {
  const kinds = ['FSEventWrap', 'TCPSocketWrap', 'TCPServerWrap', 'Timeout'];
  const over = (now: Record<string, number>) => kinds.some((k) => (now[k] ?? 0) > (before[k] ?? 0));
  for (let i = 0; i < 100 && over(resourceCounts()); i++) await sleep(50);
  const now = resourceCounts();
  for (const kind of kinds)
    assert.ok(
      (now[kind] ?? 0) <= (before[kind] ?? 0),
      `${kind}: ${before[kind] ?? 0} before, ${now[kind] ?? 0} after (${JSON.stringify(now)})`,
    );
}

/** Whether the flapping source is up; going down fails the stream in progress. */
class Gate {
  up = false;
  private waiters = new Set<() => void>();
  down(): void {
    this.up = false;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
  onDown(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }
}

/** A fake camera that cannot open while the gate is down and fails its stream when it goes down. */
class GatedCamera implements CameraDriver {
  private readonly inner = new FakeCamera({ intervalMs: 20, width: 32, height: 24 });
  readonly info = this.inner.info;
  constructor(private readonly gate: Gate) {}
  async open(): Promise<void> {
    if (!this.gate.up) throw new KioskError(ErrorCodes.CAMERA_NOT_FOUND, 'unplugged');
    await this.inner.open();
  }
  async *frames(): AsyncGenerator<Frame> {
    let wentDown = false;
    const off = this.gate.onDown(() => {
      wentDown = true;
      void this.inner.close();
    });
    try {
      for await (const f of this.inner.frames()) {
        if (wentDown) {
          f.mat.release();
          break;
        }
        yield f;
      }
      if (wentDown || !this.gate.up)
        throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, 'unplugged while streaming');
    } finally {
      off();
    }
  }
  stats(): CaptureStats {
    return this.inner.stats();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
