/**
 * The camera supervisor on scripted sources: backoff vectors, a camera missing at start, one
 * failing mid-stream, one that stalls, a live source that ends, a permanent error, and a close
 * during a long backoff.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { FakeCamera } from '../../drivers/camera/fake.js';
import { reconnectDelayMs, type SourceEvent, SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { CameraDriver, Frame } from '../../drivers/camera/types.js';
import { StalledCamera } from '../helpers/camera-fixtures.js';

const working = () => new FakeCamera({ intervalMs: 5, width: 32, height: 24 });

function supervise(
  create: () => CameraDriver,
  events: SourceEvent[],
  extra: { finite?: boolean; stallMs?: number } = {},
) {
  return new SupervisedCamera({
    id: 'cam',
    create,
    stallTimeoutMs: extra.stallMs ?? 2000,
    minMs: 20,
    maxMs: 80,
    finite: extra.finite ?? false,
    random: () => 0.5,
    onEvent: (e) => {
      events.push(e);
    },
  });
}

async function take(camera: CameraDriver, n: number): Promise<Frame['seq'][]> {
  const seqs: number[] = [];
  for await (const f of camera.frames()) {
    seqs.push(f.seq);
    f.mat.release();
    if (seqs.length >= n) break;
  }
  return seqs;
}

describe('reconnect backoff', () => {
  it('doubles from the minimum, caps at the maximum, and jitters by +-25%', () => {
    const o = { minMs: 500, maxMs: 30_000 };
    assert.equal(reconnectDelayMs(1, o, 0.5), 500);
    assert.equal(reconnectDelayMs(2, o, 0.5), 1000);
    assert.equal(reconnectDelayMs(3, o, 0), 1500);
    assert.equal(reconnectDelayMs(3, o, 0.999), 2499);
    assert.equal(reconnectDelayMs(6, o, 0), 12_000);
    assert.equal(reconnectDelayMs(7, o, 0.5), 30_000);
    assert.equal(reconnectDelayMs(100, o, 0.99), 30_000, 'never above the maximum');
    assert.equal(reconnectDelayMs(1, o, 0), 500, 'never below the minimum');
  });
});

describe('camera supervisor', () => {
  it('a camera missing at start is retried with backoff and reported lost, then restored', async () => {
    const events: SourceEvent[] = [];
    let calls = 0;
    const cam = supervise(() => {
      calls++;
      // calls 1: the constructor's config probe; 2 and 3: opens that fail; 4: the camera is back.
      if (calls <= 3)
        return new FakeCamera({ openError: new KioskError(ErrorCodes.CAMERA_NOT_FOUND, 'unplugged') });
      return working();
    }, events);
    await cam.open(); // does not throw
    assert.equal(cam.connected, false);
    const seqs = await take(cam, 3);
    await cam.close();
    assert.equal(seqs.length, 3);
    assert.deepEqual(
      events.map((e) => e.type),
      ['lost', 'restored'],
    );
    const [lost, restored] = events;
    assert.ok(lost?.type === 'lost' && lost.reason === 'open_failed');
    assert.ok(restored?.type === 'restored' && restored.attempts === 2, JSON.stringify(restored));
    assert.equal(cam.restores, 1);
  });

  it('a source that fails mid-stream is reopened and frames continue', async () => {
    const events: SourceEvent[] = [];
    let opens = 0;
    const cam = supervise(() => {
      opens++;
      return opens <= 2 ? new FakeCamera({ intervalMs: 5, failAfter: 4, width: 32, height: 24 }) : working();
    }, events);
    await cam.open();
    const seqs = await take(cam, 10);
    await cam.close();
    assert.equal(seqs.length, 10);
    assert.ok(seqs.indexOf(1, 1) > 0, `seq restarts with the new source: ${seqs}`);
    const lost = events.find((e) => e.type === 'lost');
    assert.ok(lost?.type === 'lost' && lost.reason === 'failed');
    assert.match(lost.error.message, /simulated read failure/);
    assert.ok(events.some((e) => e.type === 'restored'));
    assert.ok(cam.stats().delivered >= 10, 'stats add up over reconnections');
  });

  it('a stalled source is closed after stall_timeout and reopened', async () => {
    const events: SourceEvent[] = [];
    const stalled = new StalledCamera();
    let opens = 0;
    const cam = supervise(() => (++opens <= 2 ? stalled : working()), events, { stallMs: 150 });
    await cam.open();
    const t0 = performance.now();
    const seqs = await take(cam, 2);
    const elapsed = performance.now() - t0;
    await cam.close();
    assert.equal(seqs.length, 2);
    assert.ok(stalled.closed, 'the stalled driver was closed');
    const lost = events[0];
    assert.ok(lost?.type === 'lost' && lost.reason === 'stalled');
    assert.equal(lost.error instanceof KioskError && lost.error.code, ErrorCodes.CAMERA_STALLED);
    assert.ok(elapsed >= 150, `not declared stalled before the timeout (${elapsed} ms)`);
  });

  it('a live source that ends is a loss; a finite one simply ends', async () => {
    const liveEvents: SourceEvent[] = [];
    let opens = 0;
    const live = supervise(
      () => new FakeCamera({ count: ++opens <= 2 ? 3 : 100, intervalMs: 2 }),
      liveEvents,
    );
    await live.open();
    assert.equal((await take(live, 6)).length, 6);
    await live.close();
    assert.ok(liveEvents.some((e) => e.type === 'lost' && e.reason === 'ended'));

    const fileEvents: SourceEvent[] = [];
    const file = supervise(() => new FakeCamera({ count: 3, intervalMs: null }), fileEvents, {
      finite: true,
    });
    await file.open();
    assert.equal((await take(file, 100)).length, 3);
    assert.equal(file.ended, true);
    assert.deepEqual(fileEvents, []);
    await file.close();
  });

  it('a permanent error (backend not installed) is reported once and not retried', async () => {
    const events: SourceEvent[] = [];
    let opens = 0;
    const cam = supervise(() => {
      opens++;
      return new FakeCamera({
        openError: new KioskError(ErrorCodes.CAMERA_UNSUPPORTED, 'ffmpeg is not installed'),
      });
    }, events);
    await cam.open();
    await assert.rejects(take(cam, 1), /ffmpeg is not installed/);
    assert.deepEqual(
      events.map((e) => e.type),
      ['failed'],
    );
    assert.equal(opens, 2, 'the probe and one open');
  });

  it('close() during a long backoff returns promptly', async () => {
    const cam = new SupervisedCamera({
      id: 'cam',
      create: () => new FakeCamera({ openError: new KioskError(ErrorCodes.CAMERA_NOT_FOUND, 'gone') }),
      stallTimeoutMs: 1000,
      minMs: 60_000,
      maxMs: 60_000,
      finite: false,
    });
    await cam.open();
    const iterating = take(cam, 1);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await cam.close();
    assert.deepEqual(await iterating, []);
    assert.ok(performance.now() - t0 < 1000);
  });
});
