/**
 * Issue 24, finding 5: a forged retained `availability` (`offline`) published by any client on
 * the broker stayed while the daemon was up (`info` and `guidance` were corrected), so a fleet
 * dashboard showed a working device as offline. Against the real daemon and mosquitto: the
 * forged value is overwritten with `online`; a clean stop still leaves `offline` retained.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import { skipDaemon, startDaemon } from '../helpers/attack-kit.js';
import { collect, type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { sleep } from '../helpers/wait.js';

describe('finding 5: availability is guarded like info', { skip: skipDaemon, timeout: 300_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('a forged retained offline is replaced by online while the daemon runs; a clean stop leaves offline', async (t) => {
    const id = 'sec-avail';
    const topic = `fghv/${id}/availability`;
    const d = await startDaemon(id, broker.url);
    t.after(() => d.kiosk.kill());
    const attacker = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => attacker.endAsync(true));
    const watch = await collect(broker.url, [topic]);
    t.after(() => watch.close());
    await watch.waitFor((m) => m.retain && m.payload === 'online', 10_000);
    const seen = watch.messages.length;
    for (let i = 0; i < 3; i++) {
      await attacker.publishAsync(topic, 'offline', { qos: 1, retain: true });
      await watch.waitFor((m) => m.payload === 'online' && watch.messages.indexOf(m) > seen + 2 * i, 10_000);
      await sleep(2500);
    }
    // What a dashboard that subscribes now gets: the retained value.
    const late = await collect(broker.url, [topic]);
    t.after(() => late.close());
    assert.equal((await late.waitFor((m) => m.retain, 5000)).payload, 'online');
    // Re-asserted at most every 2 s: three forgeries, a handful of corrections, no flood.
    const corrections = watch.messages.slice(seen).filter((m) => m.payload === 'online').length;
    assert.ok(corrections >= 3 && corrections <= 6, `${corrections} corrections`);

    d.kiosk.child.kill('SIGTERM');
    await d.kiosk.waitExit(30_000);
    const afterStop = await collect(broker.url, [topic]);
    t.after(() => afterStop.close());
    assert.equal((await afterStop.waitFor((m) => m.retain, 5000)).payload, 'offline');
  });
});
