import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatestFrameSlot } from '../../drivers/camera/latest-frame.js';

describe('LatestFrameSlot (newest frame wins)', () => {
  it('hands over a pending item', async () => {
    const slot = new LatestFrameSlot<number>();
    slot.offer(1);
    assert.equal(await slot.take(), 1);
    assert.deepEqual([slot.offered, slot.taken, slot.dropped], [1, 1, 0]);
  });

  it('overwrites an untaken item, counts it dropped and passes it to onDrop', async () => {
    const dropped: number[] = [];
    const slot = new LatestFrameSlot<number>((n) => dropped.push(n));
    slot.offer(1);
    slot.offer(2);
    slot.offer(3);
    assert.equal(await slot.take(), 3);
    assert.deepEqual(dropped, [1, 2]);
    assert.deepEqual([slot.offered, slot.taken, slot.dropped], [3, 1, 2]);
  });

  it('wakes a waiting consumer on offer, without dropping', async () => {
    const slot = new LatestFrameSlot<string>();
    const waiting = slot.take();
    slot.offer('a');
    assert.equal(await waiting, 'a');
    assert.equal(slot.dropped, 0);
  });

  it('close() ends a waiting consumer; close(error) rejects it', async () => {
    const ended = new LatestFrameSlot<number>();
    const waiting = ended.take();
    ended.close();
    assert.equal(await waiting, undefined);
    assert.equal(await ended.take(), undefined);

    const failed = new LatestFrameSlot<number>();
    const failing = failed.take();
    failed.close(new Error('boom'));
    await assert.rejects(failing, /boom/);
    await assert.rejects(failed.take(), /boom/);
  });

  it('still hands out the last item after close, then ends', async () => {
    const slot = new LatestFrameSlot<number>();
    slot.offer(7);
    slot.close(new Error('source failed'));
    assert.equal(await slot.take(), 7);
    await assert.rejects(slot.take(), /source failed/);
  });

  it('frees offers after close and discarded items without counting them as dropped', async () => {
    const freed: number[] = [];
    const slot = new LatestFrameSlot<number>((n) => freed.push(n));
    slot.offer(1);
    slot.close();
    slot.offer(2);
    slot.discard();
    assert.deepEqual(freed, [2, 1]);
    assert.deepEqual([slot.offered, slot.dropped], [1, 0]);
    assert.equal(await slot.take(), undefined);
  });

  it('allows one waiting consumer only', async () => {
    const slot = new LatestFrameSlot<number>();
    const first = slot.take();
    await assert.rejects(slot.take(), /one consumer/);
    slot.offer(1);
    assert.equal(await first, 1);
  });

  it('keeps offered = taken + dropped + pending over a seeded random schedule', async () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let live = 0; // items offered and neither taken nor freed: the memory the slot holds
    const slot = new LatestFrameSlot<number>(() => live--);
    let lastTaken = 0;
    for (let i = 1; i <= 2000; i++) {
      if (random() < 0.7) {
        slot.offer(i);
        live++;
      } else {
        const pending = slot.offered - slot.taken - slot.dropped;
        if (pending === 0) continue;
        const item = await slot.take();
        assert.ok(item !== undefined && item > lastTaken, 'items come out newest-first and never twice');
        lastTaken = item;
        live--;
      }
      assert.ok(live <= 1, 'the slot never holds more than one item');
      assert.equal(slot.offered, slot.taken + slot.dropped + live);
    }
    assert.ok(slot.dropped > 0 && slot.taken > 0);
  });
});
