/**
 * Graceful shutdown of the real CLI: SIGTERM -> STOPPING, pipelines stopped, `offline`
 * retained on a real mosquitto, exit 0 within supervision.stop_deadline_ms. A second signal
 * forces the exit; a deadline that passes forces it too. A SIGTERM during model warm-up
 * cancels the start: nothing built after it, nothing left running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MODEL_DATA, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import { collect, type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { needsSharedData } from '../helpers/paths.js';

const skip = needsMosquitto() || needsSharedData(MODEL_DATA);
const DEADLINE_MS = 8000;

describe('graceful shutdown', { skip }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  async function startKiosk(deviceId: string, stopDeadlineMs = DEADLINE_MS) {
    const { file } = writeKioskConfig({
      deviceId,
      brokerUrl: broker.url,
      extra: { supervision: { stall_ms: 15_000, stop_deadline_ms: stopDeadlineMs } },
    });
    const sub = await collect(broker.url, [`fghv/${deviceId}/availability`]);
    const kiosk = spawnKiosk(['run', '--config', file]);
    await sub.waitFor((m) => m.payload === 'online', 90_000);
    await kiosk.waitForOutput(/"msg":"ready"/, 10_000);
    return { kiosk, sub };
  }

  it('SIGTERM: exit 0 within the deadline, offline retained', async () => {
    const { kiosk, sub } = await startKiosk('shutdown-kiosk');
    try {
      kiosk.child.kill('SIGTERM');
      const { code, ms } = await kiosk.waitExit(DEADLINE_MS + 5000);
      assert.equal(code, 0, kiosk.output().slice(-2000));
      assert.ok(ms < DEADLINE_MS, `took ${ms} ms`);
      assert.match(kiosk.output(), /stopping \(SIGTERM\)/);
      // A new subscriber sees the retained state the daemon left behind.
      const late = await collect(broker.url, ['fghv/shutdown-kiosk/availability']);
      const retained = await late.waitFor((m) => m.retain, 5000);
      assert.equal(retained.payload, 'offline');
      await late.close();
    } finally {
      kiosk.kill();
      await sub.close();
    }
  });

  it('SIGTERM during model warm-up: start gives up, nothing it built stays running, exit 0 within the deadline', async () => {
    const deviceId = 'shutdown-warmup';
    const { file } = writeKioskConfig({
      deviceId,
      brokerUrl: broker.url,
      extra: { supervision: { stall_ms: 15_000, stop_deadline_ms: DEADLINE_MS } },
    });
    const sub = await collect(broker.url, [`fghv/${deviceId}/#`]);
    const kiosk = spawnKiosk(['run', '--config', file]);
    try {
      // Logged once the liveness model has loaded: the detector and the warm-up come next.
      await kiosk.waitForOutput(/on execution provider/, 90_000);
      kiosk.child.kill('SIGTERM');
      const { code, ms } = await kiosk.waitExit(DEADLINE_MS + 5000);
      const out = kiosk.output();
      assert.equal(code, 0, out.slice(-2000));
      assert.ok(ms < DEADLINE_MS, `took ${ms} ms`);
      assert.match(out, /stopping \(SIGTERM\)/);
      assert.match(out, /start cancelled by the stop request/);
      // Start gave up before its later steps: no MQTT link, no camera, no health, never ready.
      assert.doesNotMatch(out, /MQTT: publishing under/);
      assert.doesNotMatch(out, /camera front open/);
      assert.doesNotMatch(out, /"msg":"ready"/);
      assert.doesNotMatch(out, /cannot start/);
      // The process ended by itself: no interval, socket or worker kept it alive past stop.
      assert.doesNotMatch(out, /handles still open after stop/);
      assert.deepEqual(
        sub.messages.map((m) => m.topic),
        [],
      );
    } finally {
      kiosk.kill();
      await sub.close();
    }
  });

  it('a second SIGTERM forces the exit', async () => {
    const { kiosk, sub } = await startKiosk('shutdown-twice');
    try {
      // A hung broker keeps the graceful stop busy (publishing `offline` waits for it), so the
      // second signal surely arrives while the first stop is still running.
      broker.pause();
      kiosk.child.kill('SIGTERM');
      // Two signals sent back to back merge into one pending signal: wait for the first.
      await kiosk.waitForOutput(/stopping \(SIGTERM\)/, 5000);
      kiosk.child.kill('SIGTERM');
      const { code } = await kiosk.waitExit(DEADLINE_MS);
      assert.equal(code, 1);
      assert.match(kiosk.output(), /second stop request: exiting now/);
    } finally {
      broker.resume();
      kiosk.kill();
      await sub.close();
    }
  });

  it('a shutdown that overruns supervision.stop_deadline_ms is forced', async () => {
    const { kiosk, sub } = await startKiosk('shutdown-deadline', 1);
    try {
      kiosk.child.kill('SIGINT');
      const { code } = await kiosk.waitExit(5000);
      assert.equal(code, 1);
      assert.match(kiosk.output(), /shutdown deadline passed: forcing exit/);
    } finally {
      kiosk.kill();
      await sub.close();
    }
  });
});
