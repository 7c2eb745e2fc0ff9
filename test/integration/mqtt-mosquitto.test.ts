import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ContractLink } from '../../daemon/contract/contract-link.js';
import { buildDecisionPayload, type InfoPayload } from '../../daemon/contract/payloads.js';
import { MqttLink } from '../../daemon/mqtt/mqtt-link.js';
import { HealthReporter } from '../../daemon/telemetry/health.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';
import {
  collect,
  type Mosquitto,
  needsMosquitto,
  testLinkOptions as options,
  startMosquitto,
} from '../helpers/mosquitto.js';
import { sleep, waitFor } from '../helpers/wait.js';

const skip = needsMosquitto();

function info(deviceId: string, configHash: string): InfoPayload {
  return {
    v: 1,
    device_id: deviceId,
    software: { name: 'fghv-kiosk', version: '0.1.0' },
    model: null,
    detector: null,
    execution_provider: 'cpu',
    cameras: [{ id: 'front', kind: 'file', source: 'demo.mp4' }],
    decision_public_key: null,
    capabilities: [],
    config_hash: configHash,
  };
}

function decision(deviceId: string, seq: number, expiryS = 10) {
  return buildDecisionPayload(sessionDecision(), DECIDED_BY, { deviceId, seq: { next: () => seq }, expiryS });
}

describe('MqttLink against mosquitto', { skip, timeout: 30_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('online and info are retained, republished after a broker restart, info again on change', async (t) => {
    const link = new ContractLink(options(broker.url, 'k-restart'));
    t.after(() => link.close());
    link.setInfo(info('k-restart', 'h1'));
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    assert.equal(link.protocolVersion, 5);
    const late = await collect(broker.url, ['fghv/k-restart/#']);
    t.after(() => late.close());
    const online = await late.waitFor((m) => m.topic === 'fghv/k-restart/availability');
    assert.deepEqual([online.payload, online.retain], ['online', true]);
    const first = await late.waitFor((m) => m.topic === 'fghv/k-restart/info');
    assert.equal(first.retain, true);
    assert.equal(JSON.parse(first.payload).config_hash, 'h1');
    await late.close();

    await broker.restart(); // persistence off: the broker forgets every retained message
    assert.equal(await waitFor(() => link.counters().connects >= 2, 5000), true, 'reconnected');
    // At least the restart; a loaded machine may see the new broker refuse once more while it
    // starts (each further reconnect republishes availability and info, counted below).
    assert.ok(link.counters().disconnects >= 1);
    const afterRestart = await collect(broker.url, ['fghv/k-restart/#']);
    t.after(() => afterRestart.close());
    await afterRestart.waitFor(
      (m) => m.topic.endsWith('/availability') && m.payload === 'online' && m.retain,
    );
    await afterRestart.waitFor(
      (m) => m.topic.endsWith('/info') && m.retain && JSON.parse(m.payload).config_hash === 'h1',
    );
    link.setInfo(info('k-restart', 'h2'));
    await afterRestart.waitFor(
      (m) => m.topic.endsWith('/info') && JSON.parse(m.payload).config_hash === 'h2',
    );
    const infoCount = () => afterRestart.messages.filter((m) => m.topic.endsWith('/info')).length;
    // The reconnect's own republish of the retained topics may still be on its way (it carries the
    // info in force, h2 by now): let it land before counting.
    await sleep(1000);
    const before = infoCount();
    const connectsBefore = link.counters().connects;
    link.setInfo(info('k-restart', 'h2')); // unchanged: not republished
    await sleep(200);
    // Only a reconnect in the meantime may publish info again (once per connect, as it must).
    assert.equal(infoCount(), before + (link.counters().connects - connectsBefore));

    await link.close();
    await afterRestart.waitFor((m) => m.topic.endsWith('/availability') && m.payload === 'offline');
  });

  test('decision: QoS 1, never retained, MQTT 5 message expiry', async (t) => {
    const sub = await collect(broker.url, ['fghv/k-dec/+/decision']);
    t.after(() => sub.close());
    const link = new ContractLink(options(broker.url, 'k-dec'));
    t.after(() => link.close());
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    const payload = decision('k-dec', 7);
    assert.deepEqual(await link.publishDecision('front', payload), { delivered: true });
    const got = await sub.waitFor((m) => m.topic === 'fghv/k-dec/front/decision');
    assert.equal(got.retain, false);
    assert.ok(got.messageExpiryInterval !== undefined, 'message expiry set');
    assert.ok(
      got.messageExpiryInterval >= 9 && got.messageExpiryInterval <= 10,
      `expiry ${got.messageExpiryInterval}`,
    );
    assert.deepEqual(JSON.parse(got.payload), payload);
    const late = await collect(broker.url, ['fghv/k-dec/+/decision']);
    t.after(() => late.close());
    await sleep(200);
    assert.equal(late.messages.length, 0, 'a late subscriber gets no retained decision');
  });

  test('the bare transport: opaque messages and the retained topics it is given, nothing of its own', async (t) => {
    const sub = await collect(broker.url, ['#']);
    t.after(() => sub.close());
    const { deviceId: _d, prefix: _p, ...transport } = options(broker.url, 'unused');
    const link = new MqttLink({ ...transport, clientId: 'bare-1' });
    t.after(() => link.close());
    link.retain('bare/state', 'a');
    link.start();
    assert.ok(await link.waitConnected(5000));
    await sub.waitFor((m) => m.topic === 'bare/state' && m.payload === 'a');
    assert.deepEqual(await link.publish({ topic: 'bare/x', payload: 'hello', qos: 1, retain: false }), {
      delivered: true,
    });
    await sub.waitFor((m) => m.topic === 'bare/x' && m.payload === 'hello');
    // Another client overwrites the owned retained value: the link puts its own back.
    const forger = await import('mqtt').then((m) => m.connectAsync(broker.url, { reconnectPeriod: 0 }));
    t.after(() => forger.endAsync(true));
    await forger.publishAsync('bare/state', 'b', { qos: 1, retain: true });
    assert.ok(
      await waitFor(
        () => sub.messages.filter((m) => m.topic === 'bare/state' && m.payload === 'a').length >= 2,
        10_000,
      ),
      'the owned value re-asserted',
    );
    link.retain('bare/state', 'c');
    await sub.waitFor((m) => m.topic === 'bare/state' && m.payload === 'c');
    await link.close();
    const late = await collect(broker.url, ['bare/state']);
    t.after(() => late.close());
    assert.equal((await late.waitFor((m) => m.retain)).payload, 'c');
    // No availability, no will: only what it was given went out (fghv/: other tests' retained state).
    const seen = new Set(sub.messages.map((m) => m.topic).filter((topic) => !topic.startsWith('fghv/')));
    assert.deepEqual(seen, new Set(['bare/state', 'bare/x']));
    assert.equal(link.counters().connects, 1);
  });

  test('last will: offline after the link process is killed', async (t) => {
    const sub = await collect(broker.url, ['fghv/k-will/availability']);
    t.after(() => sub.close());
    const linkModule = new URL('../../daemon/contract/contract-link.js', import.meta.url).href;
    const script = `
      import { ContractLink } from ${JSON.stringify(linkModule)};
      const link = new ContractLink(${JSON.stringify(options(broker.url, 'k-will'))});
      link.start();
      if (await link.waitConnected(5000)) console.log('connected');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('connected') && resolve());
      child.once('exit', (code) => reject(new Error(`link process exited early (${code})`)));
    });
    await sub.waitFor((m) => m.payload === 'online');
    child.kill('SIGKILL'); // no DISCONNECT: the broker must publish the will
    const will = await sub.waitFor((m) => m.payload === 'offline');
    assert.equal(will.topic, 'fghv/k-will/availability');
    const late = await collect(broker.url, ['fghv/k-will/availability']);
    t.after(() => late.close());
    const retained = await late.waitFor(() => true);
    assert.deepEqual([retained.payload, retained.retain], ['offline', true]);
  });

  test('health is published with real system figures', async (t) => {
    const sub = await collect(broker.url, ['fghv/k-health/health']);
    t.after(() => sub.close());
    const link = new ContractLink(options(broker.url, 'k-health'));
    t.after(() => link.close());
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    const reporter = new HealthReporter({
      deviceId: 'k-health',
      intervalS: 0.2,
      sink: link,
      pipeline: () => ({
        fps: { capture: 0, processed: 0, dropped: 0 },
        latency_ms: {},
        cameras: [],
        model: null,
        execution_provider: null,
      }),
    });
    await reporter.start();
    t.after(() => reporter.stop());
    const got = await sub.waitFor(() => true);
    await reporter.stop();
    assert.equal(got.retain, false);
    const health = JSON.parse(got.payload);
    assert.equal(health.device_id, 'k-health');
    assert.equal(typeof health.system.cpu_load_pct, 'number');
    assert.ok(health.system.mem_used_pct > 0 && health.system.mem_used_pct <= 100);
    assert.ok(health.system.cpu_temp_c === null || typeof health.system.cpu_temp_c === 'number');
    assert.equal(health.mqtt.connected, true);
    assert.equal(health.mqtt.protocol_version, 5);
  });
});

describe('MqttLink with the broker down at start', { skip, timeout: 30_000 }, () => {
  test('keeps working offline, bounds its queue, drops expired decisions, connects when the broker appears', async (t) => {
    const broker = await startMosquitto({ autostart: false });
    t.after(() => broker.stop());
    const link = new ContractLink(options(broker.url, 'k-late', { maxQueued: 2 }));
    t.after(() => link.close());
    link.start();
    assert.equal(await link.waitConnected(300), false);
    // Beyond maxQueued the oldest is dropped.
    const overflowed = link.publishDecision('front', decision('k-late', 1));
    const expiring = link.publishDecision('front', decision('k-late', 2, 1));
    const kept = link.publishDecision('front', decision('k-late', 3));
    assert.deepEqual(await overflowed, { delivered: false, reason: 'overflow' });
    const health = await link.publish({ topic: link.topics.health, payload: '{}', qos: 0, retain: false });
    assert.deepEqual(health, { delivered: false, reason: 'offline' });
    assert.deepEqual(link.counters(), {
      connected: false,
      protocol_version: null,
      connects: 0,
      disconnects: 0,
      published: 0,
      dropped: 2,
      queued: 2,
      broker: null,
    });
    await sleep(1100); // the first queued decision's expires_at passes while offline
    await broker.start();
    assert.equal(await link.waitConnected(5000), true);
    assert.deepEqual(await expiring, { delivered: false, reason: 'expired' });
    assert.deepEqual(await kept, { delivered: true });
    const sub = await collect(broker.url, ['fghv/k-late/availability']);
    t.after(() => sub.close());
    await sub.waitFor((m) => m.payload === 'online' && m.retain);
    assert.equal(link.counters().queued, 0);
    assert.equal(link.counters().dropped, 3);
  });
});
