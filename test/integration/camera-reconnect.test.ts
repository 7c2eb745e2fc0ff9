/**
 * Capture faults with real processes: a live HTTP camera (a local ffmpeg server) killed
 * mid-stream and started again, reconnection observed and its time measured; and the ffmpeg
 * raw pipe on odd sizes, grey, 4K, damaged files and a burst faster than the consumer; and the
 * daemon itself with a camera missing at start (health and the status page say for how long
 * and what the next attempt waits for) and with a live camera flapping twenty times.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { Daemon } from '../../daemon/daemon.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { type SourceEvent, SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { Frame } from '../../drivers/camera/types.js';
import { assertDropsAccounted, DEMO_VIDEO, drain, needsFfmpeg } from '../helpers/camera-fixtures.js';
import {
  type Collector,
  collect,
  type Mosquitto,
  needsMosquitto,
  startMosquitto,
} from '../helpers/mosquitto.js';
import { repoRoot } from '../helpers/paths.js';
import { freePort, type HttpStream, startHttpStream } from '../helpers/stream-server.js';
import { tempDir } from '../helpers/temp.js';
import { sleep } from '../helpers/wait.js';

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
      // What the measurement must show, in the order things happened (one monotonic clock, no
      // time limit): restored only once the source is back, reported before the first frame
      // after it reaches the consumer, and its downMs covers at least the measured outage.
      const restoredAt = (restored as { at: number }).at;
      assert.ok(
        restoredAt >= restartAt,
        `restored ${Math.round(restartAt - restoredAt)} ms before the source was back`,
      );
      assert.ok(firstAfter.at >= restoredAt, 'a frame reached the consumer before the restored event');
      const outage = Math.floor(restartAt - (lost as { at: number }).at);
      assert.ok(outage >= 800, `measured outage ${outage} ms`);
      assert.ok(restored.downMs >= outage, `downMs ${restored.downMs} < measured outage ${outage} ms`);
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

describe('the daemon with a camera that is gone, comes back, and flaps', {
  skip: skip || needsMosquitto(),
  timeout: 600_000,
}, () => {
  let broker: Mosquitto;
  let sub: Collector;
  const dirs: string[] = [];
  before(async () => {
    broker = await startMosquitto();
    sub = await collect(broker.url, ['fghv/#']);
  });
  after(async () => {
    await sub?.close();
    await broker?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const daemonFor = (deviceId: string, camera: Record<string, unknown>) => {
    const dir = mkdtempSync(path.join(tmp, 'daemon-'));
    dirs.push(dir);
    const config = validateConfig(
      {
        device: { id: deviceId, state_dir: path.join(dir, 'state') },
        mqtt: { url: broker.url, health_interval_s: 1 },
        cameras: [{ id: 'front', ...camera }],
        liveness: { providers: ['cpu'] },
        status: { port: 0 },
      },
      'camera-reconnect test',
    );
    return new Daemon({ config, log: silentLogger(), version: 'test' });
  };
  const cameraEvent = (d: Daemon, state: string) =>
    new Promise<void>((resolve) => {
      const on = (e: { state: string }) => {
        if (e.state !== state) return;
        d.off('camera', on);
        resolve();
      };
      d.on('camera', on);
    });
  const health = (deviceId: string, match: (cam: Record<string, unknown>) => boolean) =>
    sub.waitFor((m) => {
      if (m.topic !== `fghv/${deviceId}/health`) return false;
      const cam = JSON.parse(m.payload).cameras?.[0];
      return Boolean(cam && match(cam));
    }, 30_000);

  it('health and the status page show how long a camera is down and what its next attempt waits for', async () => {
    const file = path.join(tmp, 'later', 'front.mp4');
    const daemon = daemonFor('gone-kiosk', { source: file, loop: true, realtime: true });
    try {
      await daemon.start(); // the camera is missing: the daemon starts anyway
      const down = JSON.parse(
        (await health('gone-kiosk', (c) => c.state === 'down' && Number(c.down_s) >= 1)).payload,
      ).cameras[0];
      assert.equal(down.waiting_for, 'source', JSON.stringify(down));
      assert.equal(down.next_attempt_in_s, null, 'no timer: the attempt comes when the file appears');
      const status = await (await fetch(`${daemon.statusUrl}api/status`)).json();
      const cam = status.cameras[0];
      assert.equal(cam.state, 'down');
      assert.equal(typeof cam.down_s, 'number');
      assert.equal(cam.waiting_for, 'source');

      const running = cameraEvent(daemon, 'running');
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(`${file}.part`, readFileSync(path.join(repoRoot, DEMO_VIDEO)));
      renameSync(`${file}.part`, file);
      await running;
      const up = JSON.parse((await health('gone-kiosk', (c) => c.state === 'running')).payload).cameras[0];
      assert.deepEqual([up.down_s, up.next_attempt_in_s, up.waiting_for], [null, null, null]);
      const after = (await (await fetch(`${daemon.statusUrl}api/status`)).json()).cameras[0];
      assert.equal(after.down_s, null);
    } finally {
      await daemon.stop();
    }
  });

  it('a live camera flapping (up 1 s, down 1 s, twenty times): the daemon stays up, no process or socket leaks, the audit log is rate-limited', async () => {
    const port = await freePort();
    let server = startHttpStream(port, { rate: 25 });
    const daemon = daemonFor('flap-kiosk', { kind: 'ffmpeg', source: server.source, stall_timeout_ms: 3000 });
    const kinds = ['ProcessWrap', 'TCPSocketWrap', 'FSEventWrap'];
    const handles = () => {
      const out: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) if (kinds.includes(r)) out[r] = (out[r] ?? 0) + 1;
      return out;
    };
    try {
      const running = cameraEvent(daemon, 'running');
      await daemon.start();
      await running;
      await sleep(1000);
      const baseline = handles();
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) {
        const down = cameraEvent(daemon, 'down');
        await server.kill();
        await down;
        await sleep(1000);
        const back = cameraEvent(daemon, 'running');
        server = startHttpStream(port, { rate: 25 });
        await back;
        await sleep(1000);
      }
      const elapsedMin = (performance.now() - t0) / 60_000;
      // Health ticks spawn short-lived helpers (systeminformation), so handles may only shrink;
      // the ffmpeg children are exact: the server and the daemon's one reader.
      const now = handles();
      for (const k of kinds)
        assert.ok(
          (now[k] ?? 0) <= (baseline[k] ?? 0),
          `${k}: ${JSON.stringify(baseline)} -> ${JSON.stringify(now)}`,
        );
      const children = execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], {
        encoding: 'utf8',
      })
        .split('\n')
        .filter((c) => c.trim() === 'ffmpeg');
      assert.equal(children.length, 2, 'one ffmpeg server and one ffmpeg reader, none left over');
      assert.equal(daemon.cameraStates()[0]?.state, 'running', 'the daemon is up and the camera runs');

      const audit = sub.messages
        .filter((m) => m.topic === 'fghv/flap-kiosk/audit')
        .map((m) => JSON.parse(m.payload) as { id: string; event: string; details: Record<string, unknown> });
      const unique = [...new Map(audit.map((a) => [a.id, a])).values()];
      const lost = unique.filter((a) => a.event === 'camera_lost');
      const back = unique.filter((a) => a.event === 'camera_back');
      // Burst of 5 outages, then one per minute: never one pair per flap.
      assert.ok(lost.length >= 5, `the first outages are audited (${lost.length})`);
      assert.ok(
        lost.length <= 5 + Math.ceil(elapsedMin),
        `${lost.length} camera_lost in ${elapsedMin.toFixed(1)} min`,
      );
      assert.ok(
        back.length <= lost.length && back.length >= lost.length - 1,
        'camera_back pairs with camera_lost',
      );
    } finally {
      await server.kill();
      await daemon.stop();
    }
  });
});
