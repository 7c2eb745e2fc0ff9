/**
 * FramePump in pull mode (files played as fast as the pipeline goes): the next image is read
 * while the current one is processed, in order, nothing lost, at most one read in flight; a
 * prefetched frame is freed when the consumer stops; a failed prefetch surfaces at the next step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { FramePump } from '../../drivers/camera/frame-pump.js';

/** A source of `count` 8x8 images whose pixel value is their index; records reads and releases. */
function source(count: number, failAt: number | null = null) {
  const log = { started: 0, finished: 0, inFlight: 0, maxInFlight: 0, mats: [] as Mat[] };
  const read = async (): Promise<Mat | null> => {
    const i = log.started++;
    log.inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
    await new Promise((r) => setTimeout(r, 2));
    log.inFlight--;
    log.finished++;
    if (i === failAt) throw new Error('decoder exploded');
    if (i >= count) return null;
    const mat = new cv.Mat(8, 8, cv.CV_8UC3, [i, i, i]);
    log.mats.push(mat);
    return mat;
  };
  return { read, log };
}

describe('FramePump pull mode', () => {
  it('reads one frame ahead while the consumer works, in order and without loss', async () => {
    const { read, log } = source(5);
    const pump = new FramePump(read, { push: false }, 'test');
    const seen: number[] = [];
    for await (const frame of pump.frames()) {
      // The next read has started before this frame is processed.
      assert.equal(log.started, frame.seq + 1);
      await new Promise((r) => setTimeout(r, 5)); // "processing"
      assert.equal(log.finished, frame.seq + 1, 'the prefetch completed during processing');
      seen.push((frame.mat.atRaw(0, 0) as unknown as number[])[0] as number);
      frame.mat.release();
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.equal(log.maxInFlight, 1);
    assert.deepEqual(pump.stats(), { captured: 5, delivered: 5, dropped: 0 });
    assert.equal(pump.ended, true);
  });

  it('a consumer that stops early frees the prefetched frame', async () => {
    const { read, log } = source(10);
    const pump = new FramePump(read, { push: false }, 'test');
    for await (const frame of pump.frames()) {
      frame.mat.release();
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(log.mats.length, 2, 'one delivered, one prefetched');
    assert.ok(
      log.mats.every((m) => m.empty),
      'both released',
    );
  });

  it('stop() ends the stream and frees the prefetched frame', async () => {
    const { read, log } = source(10);
    const pump = new FramePump(read, { push: false }, 'test');
    let n = 0;
    for await (const frame of pump.frames()) {
      n++;
      frame.mat.release();
      if (n === 2) await pump.stop();
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(n, 2);
    assert.ok(log.mats.every((m) => m.empty));
  });

  it('a read that fails during processing is thrown at the next step, not as an unhandled rejection', async () => {
    const { read } = source(10, 2);
    const pump = new FramePump(read, { push: false }, 'test');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const seen: number[] = [];
    try {
      await assert.rejects(
        (async () => {
          for await (const frame of pump.frames()) {
            await new Promise((r) => setTimeout(r, 10)); // the failing prefetch settles meanwhile
            seen.push(frame.seq);
            frame.mat.release();
          }
        })(),
        (e: unknown) =>
          isKioskError(e) && e.code === ErrorCodes.CAMERA_READ_FAILED && /exploded/.test(e.message),
      );
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(unhandled, []);
  });
});
