/**
 * Camera outages in the audit log: one camera_lost / camera_back pair per outage however many
 * state changes it had, and a flapping camera limited to a burst then one outage per refill
 * period, with the left-out outages counted on the next camera_lost and a camera that goes
 * down for good while over the limit still audited once the limit allows. Clock and timers
 * are injected: nothing here depends on real time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CameraOutageAudit } from '../../daemon/contract/audit/camera-outages.js';

function harness(o: { burst?: number; refillMs?: number } = {}) {
  let now = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const emitted: { event: string; details: Record<string, unknown> }[] = [];
  const audit = new CameraOutageAudit({
    emit: (event, details) => emitted.push({ event, details }),
    burst: o.burst ?? 3,
    refillMs: o.refillMs ?? 60_000,
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return t;
    },
    clearTimer: (h) => {
      (h as { live: boolean }).live = false;
    },
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => x.live && x.at <= now)) {
      t.live = false;
      t.fn();
    }
  };
  return { audit, emitted, advance, live: () => timers.filter((t) => t.live).length };
}

describe('camera outages in the audit log', () => {
  it('one lost/back pair per outage, whatever the states in between', () => {
    const { audit, emitted } = harness();
    audit.state('front', 'running', null);
    audit.state('front', 'down', 'gone');
    audit.state('front', 'down', 'still gone');
    audit.state('front', 'failed', 'open failed');
    audit.state('front', 'running', null);
    audit.state('front', 'running', null);
    assert.deepEqual(emitted, [
      { event: 'camera_lost', details: { camera_id: 'front', state: 'down', error: 'gone' } },
      { event: 'camera_back', details: { camera_id: 'front', state: 'running', error: null } },
    ]);
  });

  it('a camera flapping twenty times is audited for the burst, then the rest is counted', () => {
    const { audit, emitted, advance, live } = harness({ burst: 3, refillMs: 60_000 });
    for (let i = 0; i < 20; i++) {
      audit.state('front', 'down', 'unplugged');
      advance(1000);
      audit.state('front', 'running', null);
      advance(1000);
    }
    // 40 s: three outages audited, seventeen over the limit (no refill yet).
    assert.deepEqual(
      emitted.map((e) => e.event),
      ['camera_lost', 'camera_back', 'camera_lost', 'camera_back', 'camera_lost', 'camera_back'],
    );
    assert.equal(live(), 0, 'no timer left for outages that ended');
    advance(60_000);
    audit.state('front', 'down', 'unplugged');
    const last = emitted.at(-1);
    assert.equal(last?.event, 'camera_lost');
    assert.equal(last?.details.suppressed_outages, 17, 'the left-out outages are counted');
    audit.state('front', 'running', null);
    assert.equal(emitted.at(-1)?.event, 'camera_back');
    assert.equal(emitted.length, 8);
  });

  it('a camera that goes down for good while over the limit is audited when a slot is due', () => {
    const { audit, emitted, advance } = harness({ burst: 1, refillMs: 60_000 });
    audit.state('front', 'down', 'a');
    audit.state('front', 'running', null);
    audit.state('front', 'down', 'b'); // over the limit: pending
    assert.equal(emitted.length, 2);
    advance(59_000);
    assert.equal(emitted.length, 2);
    advance(2000);
    assert.deepEqual(emitted.at(-1), {
      event: 'camera_lost',
      details: { camera_id: 'front', state: 'down', error: 'b' },
    });
    audit.state('front', 'running', null);
    assert.equal(emitted.at(-1)?.event, 'camera_back');
  });

  it('limits are per camera, and close() stops pending timers', () => {
    const { audit, emitted, live } = harness({ burst: 1 });
    audit.state('a', 'down', null);
    audit.state('a', 'running', null);
    audit.state('a', 'down', null); // a: over its limit
    audit.state('b', 'down', null); // b: its own budget
    assert.deepEqual(
      emitted.map((e) => `${e.event}:${e.details.camera_id}`),
      ['camera_lost:a', 'camera_back:a', 'camera_lost:b'],
    );
    assert.equal(live(), 1);
    audit.close();
    assert.equal(live(), 0);
  });
});
