/**
 * Issue 24, finding 1: one unsigned request whose MQTT 5 response topic lay under the
 * device's own `response/` prefix but had 3,000 levels took the daemon off the broker until it
 * was restarted: mosquitto closes the connection of a client that publishes more than 200
 * levels, and the QoS 1 reply was re-sent at the head of the queue after every reconnect.
 * Refused here in three places, each attacked: the command server honours only short response
 * topics (topics.ts), the link never writes a topic a broker refuses (topic-limits.ts), and a
 * reply that still cost the connection is dropped, never re-sent (`once`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { RESPONSE_TOPIC_MAX_BYTES, RESPONSE_TOPIC_MAX_LEVELS, Topics } from '../../daemon/contract/topics.js';
import { MqttLink } from '../../daemon/mqtt/mqtt-link.js';
import {
  BROKER_MAX_TOPIC_LEVELS,
  MQTT_MAX_TOPIC_BYTES,
  topicProblem,
} from '../../daemon/mqtt/topic-limits.js';
import { attacker, fleetKey, signedBody, skipDaemon, startDaemon } from '../helpers/attack-kit.js';
import { collect, type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { sleep } from '../helpers/wait.js';

/** `n` levels in all, `a/a/.../a`. */
const levels = (n: number) => Array.from({ length: n }, () => 'a').join('/');

describe('finding 1: response topics and topics in general are checked before use', () => {
  test('responseTopicAllowed: only short topics under the own response prefix, at each limit', () => {
    const t = new Topics('fghv', 'dev1');
    const own = 'fghv/dev1/response/';
    assert.equal(t.responseTopicAllowed(`${own}${levels(RESPONSE_TOPIC_MAX_LEVELS)}`), true);
    assert.equal(t.responseTopicAllowed(`${own}${levels(RESPONSE_TOPIC_MAX_LEVELS + 1)}`), false);
    assert.equal(t.responseTopicAllowed(`${own}${levels(3000)}`), false);
    // Bytes of UTF-8, not characters: 128 two-byte characters are 256 bytes.
    assert.equal(t.responseTopicAllowed(`${own}${'é'.repeat(RESPONSE_TOPIC_MAX_BYTES / 2)}`), true);
    assert.equal(t.responseTopicAllowed(`${own}${'é'.repeat(RESPONSE_TOPIC_MAX_BYTES / 2)}x`), false);
    assert.equal(t.responseTopicAllowed(`${own}${'x'.repeat(RESPONSE_TOPIC_MAX_BYTES)}`), true);
    assert.equal(t.responseTopicAllowed(`${own}${'x'.repeat(RESPONSE_TOPIC_MAX_BYTES + 1)}`), false);
    for (const bad of [
      own,
      `${own}a//b`,
      `${own}a/`,
      `${own}a\u0001`,
      `${own}a\ud800`,
      `${own}+`,
      `${own}#`,
      'fghv/dev2/response/x',
      'fghv/dev1/responsex',
      'fghv/dev1/front/decision',
      42,
      undefined,
    ]) {
      assert.equal(t.responseTopicAllowed(bad), false, JSON.stringify(bad));
    }
  });

  test('topicProblem: MQTT byte limit, broker level limit, controls and wildcards', () => {
    assert.equal(topicProblem(levels(BROKER_MAX_TOPIC_LEVELS)), null);
    assert.match(topicProblem(levels(BROKER_MAX_TOPIC_LEVELS + 1)) ?? '', /more than 200 levels/);
    assert.equal(topicProblem('x'.repeat(MQTT_MAX_TOPIC_BYTES)), null);
    assert.match(topicProblem('x'.repeat(MQTT_MAX_TOPIC_BYTES + 1)) ?? '', /65536 bytes exceeds 65535/);
    assert.match(topicProblem(`${'é'.repeat(32_767)}xx`) ?? '', /65536 bytes/);
    for (const bad of ['', 'a/+/b', 'a/#', 'a\u0000', 'a\u007f', 'a\u009f', 'a\ufffe', 'a\udc00']) {
      assert.notEqual(topicProblem(bad), null, JSON.stringify(bad));
    }
    assert.equal(topicProblem('fghv/gerät-1/😀/decision'), null, 'valid UTF-8 beyond ASCII');
  });
});

describe('finding 1 against mosquitto: the link', { skip: needsMosquitto(), timeout: 60_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  const link = (id: string, extra: Partial<ConstructorParameters<typeof MqttLink>[0]> = {}) =>
    new MqttLink({
      url: broker.url,
      clientId: id,
      username: null,
      password: null,
      protocolVersion: 5,
      keepaliveS: 5,
      reconnectMinMs: 50,
      reconnectMaxMs: 400,
      ...extra,
    });

  test('just under each limit is delivered, just over is refused without losing the connection', async (t) => {
    const l = link('limits');
    t.after(() => l.close());
    l.start();
    assert.equal(await l.waitConnected(5000), true);
    const sub = await collect(broker.url, ['lim/#']);
    t.after(() => sub.close());
    const at200 = `lim/${levels(BROKER_MAX_TOPIC_LEVELS - 1)}`;
    assert.deepEqual(await l.publish({ topic: at200, payload: '200', qos: 1, retain: false }), {
      delivered: true,
    });
    await sub.waitFor((m) => m.topic === at200);
    assert.deepEqual(await l.publish({ topic: `${at200}/a`, payload: '201', qos: 1, retain: false }), {
      delivered: false,
      reason: 'refused',
    });
    const longest = `lim/${'x'.repeat(MQTT_MAX_TOPIC_BYTES - 4)}`;
    assert.deepEqual(await l.publish({ topic: longest, payload: 'max', qos: 1, retain: false }), {
      delivered: true,
    });
    await sub.waitFor((m) => m.topic === longest);
    assert.deepEqual(await l.publish({ topic: `${longest}x`, payload: 'over', qos: 1, retain: false }), {
      delivered: false,
      reason: 'refused',
    });
    assert.deepEqual(await l.publish({ topic: 'lim/\u0001', payload: 'ctl', qos: 0, retain: false }), {
      delivered: false,
      reason: 'refused',
    });
    await sleep(300);
    const c = l.counters();
    assert.equal(c.disconnects, 0, 'no refused topic reached the broker');
    assert.equal(c.connected, true);
    assert.deepEqual(
      sub.messages.map((m) => m.payload),
      ['200', 'max'],
    );
  });

  test('a `once` message the broker refuses costs one connection, is dropped and never re-sent', async (t) => {
    // Limits lifted on purpose, so the 3,000-level topic reaches mosquitto as it did before.
    const l = link('once', { topicLimits: { maxBytes: MQTT_MAX_TOPIC_BYTES, maxLevels: 10_000 } });
    t.after(() => l.close());
    l.start();
    assert.equal(await l.waitConnected(5000), true);
    const outcome = await l.publish({
      topic: `x/${levels(3000)}`,
      payload: '{}',
      qos: 1,
      retain: false,
      once: true,
    });
    assert.equal(outcome.delivered, false);
    await sleep(3000);
    const c = l.counters();
    assert.equal(c.disconnects, 1, `one lost connection, not a loop: ${JSON.stringify(c)}`);
    assert.equal(c.connects, 2);
    assert.equal(c.queued, 0);
    assert.equal(c.connected, true);
    // The contrast that shows the test can fail: the same message without `once` is re-sent
    // after every reconnect and keeps costing the connection.
    void l.publish({ topic: `x/${levels(3000)}`, payload: '{}', qos: 1, retain: false });
    await sleep(3000);
    assert.ok(l.counters().disconnects >= 3, `re-sent without once: ${JSON.stringify(l.counters())}`);
  });
});

describe('finding 1 against mosquitto and the real daemon', { skip: skipDaemon, timeout: 600_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  /** Publishes a request with `responseTopic`; resolves with the topic the reply came on. */
  async function ask(c: MqttClient, id: string, responseTopic: string, corr: string): Promise<string> {
    const reply = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${corr} within 20 s`)), 20_000);
      const on = (topic: string, _p: Buffer, packet: { properties?: { correlationData?: Buffer } }) => {
        if (packet.properties?.correlationData?.toString() !== corr) return;
        clearTimeout(timer);
        c.off('message', on);
        resolve(topic);
      };
      c.on('message', on);
    });
    await c.publishAsync(`fghv/${id}/request/health_check`, '{}', {
      qos: 1,
      properties: { responseTopic, correlationData: Buffer.from(corr) },
    });
    return reply;
  }

  test('a 3,000-level response topic gets its reply on response/health_check and no disconnect; limits honoured exactly', async (t) => {
    const id = 'sec-resp';
    const d = await startDaemon(id, broker.url);
    t.after(() => d.kiosk.kill());
    const availability = await collect(broker.url, [`fghv/${id}/availability`]);
    t.after(() => availability.close());
    const c = await connectAsync(broker.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: `atk-${process.pid}`,
    });
    t.after(() => c.endAsync(true));
    await c.subscribeAsync(`fghv/${id}/response/#`, { qos: 1 });
    const own = `fghv/${id}/response/`;
    const fallback = `${own}health_check`;

    assert.equal(await ask(c, id, `${own}${levels(3000)}`, 'deep'), fallback);
    await sleep(5000);
    const flips = availability.messages.filter((m) => !m.retain);
    assert.deepEqual(flips, [], 'no availability flip after the attack');

    const cases: [string, string, boolean][] = [
      ['levels-8', `${own}${levels(RESPONSE_TOPIC_MAX_LEVELS)}`, true],
      ['levels-9', `${own}${levels(RESPONSE_TOPIC_MAX_LEVELS + 1)}`, false],
      ['bytes-256', `${own}${'b'.repeat(RESPONSE_TOPIC_MAX_BYTES)}`, true],
      ['bytes-257', `${own}${'b'.repeat(RESPONSE_TOPIC_MAX_BYTES + 1)}`, false],
      ['levels-201', `${own}${levels(BROKER_MAX_TOPIC_LEVELS - 2)}`, false],
    ];
    for (const [corr, topic, honoured] of cases) {
      assert.equal(await ask(c, id, topic, corr), honoured ? topic : fallback, corr);
    }
    // Health as the daemon reports it: the link never lost its connection.
    const a = await attacker(broker.url);
    t.after(() => a.close());
    const h = (await a.request(id, 'health_check', {})).data as {
      mqtt: { connected: boolean; disconnects: number };
    };
    assert.equal(h.mqtt.connected, true);
    assert.equal(h.mqtt.disconnects, 0);
    assert.equal(availability.messages.filter((m) => m.payload === 'offline').length, 0);
  });

  test('with a fleet key configured: unsigned and fleet-signed requests with a 3,000-level response topic, no disconnect', async (t) => {
    const id = 'sec-resp-fleet';
    const fleet = fleetKey();
    const d = await startDaemon(id, broker.url, { commands: { fleet_public_keys: [fleet.publicKey] } });
    t.after(() => d.kiosk.kill());
    const availability = await collect(broker.url, [`fghv/${id}/availability`]);
    t.after(() => availability.close());
    const c = await connectAsync(broker.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: `atk-fleet-${process.pid}`,
    });
    t.after(() => c.endAsync(true));
    await c.subscribeAsync(`fghv/${id}/response/#`, { qos: 1 });
    const deep = `fghv/${id}/response/${levels(3000)}`;
    const replyTopic = (corr: string) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${corr}`)), 20_000);
        c.on('message', (topic, _p, packet) => {
          if (packet.properties?.correlationData?.toString() !== corr) return;
          clearTimeout(timer);
          resolve(topic);
        });
      });
    for (const [corr, body] of [
      ['unsigned', {}],
      ['signed', signedBody(fleet, id, 'health_check', {})],
    ] as const) {
      const reply = replyTopic(corr);
      await c.publishAsync(`fghv/${id}/request/health_check`, JSON.stringify(body), {
        qos: 1,
        properties: { responseTopic: deep, correlationData: Buffer.from(corr) },
      });
      assert.equal(await reply, `fghv/${id}/response/health_check`, corr);
    }
    await sleep(5000);
    assert.deepEqual(
      availability.messages.filter((m) => !m.retain),
      [],
      'no availability flip',
    );
  });
});
