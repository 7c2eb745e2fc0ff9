import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import { isKioskError } from '../../core/errors.js';
import { ContractLink } from '../../daemon/contract/contract-link.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { MOSQUITTO_BIN, startEmbeddedBroker } from '../../daemon/mqtt/embedded-broker.js';
import type { LinkLogger } from '../../daemon/mqtt/mqtt-link.js';
import { DECIDED_BY, sessionDecision, spoofReject } from '../helpers/decision-input.js';
import { collect, testLinkOptions as linkOptions } from '../helpers/mosquitto.js';

describe('embedded broker', { timeout: 60_000 }, () => {
  test('aedes: the link falls back to MQTT 3.1.1 and online, info and decision reach a client', async (t) => {
    const broker = await startEmbeddedBroker('127.0.0.1', 0, 'aedes');
    assert.equal(broker.kind, 'aedes');
    t.after(() => broker.close());
    assert.ok(broker.port > 0);
    const sub = await collect(broker.url, ['fghv/k-emb/#'], 4);
    t.after(() => sub.close());
    const logged: string[] = [];
    const log: LinkLogger = { debug() {}, info: (_o, m) => logged.push(m), warn: (_o, m) => logged.push(m) };
    const link = new ContractLink(linkOptions(broker.url, 'k-emb', { log }));
    t.after(() => link.close());
    link.setInfo({
      v: 1,
      device_id: 'k-emb',
      software: { name: 'fghv-kiosk', version: '0.1.0' },
      model: null,
      detector: null,
      execution_provider: 'cpu',
      cameras: [],
      decision_public_key: null,
      capabilities: [],
      config_hash: null,
    });
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    assert.equal(link.protocolVersion, 4, 'aedes 1.x refuses MQTT 5');
    assert.ok(logged.includes('broker refused MQTT 5; falling back to MQTT 3.1.1'), logged.join('; '));
    assert.equal(link.clientId, 'fghv-k-emb');
    await sub.waitFor((m) => m.topic === 'fghv/k-emb/availability' && m.payload === 'online');
    const info = await sub.waitFor((m) => m.topic === 'fghv/k-emb/info');
    assert.equal(JSON.parse(info.payload).device_id, 'k-emb');

    const payload = buildDecisionPayload(spoofReject({ trackId: 3 }), DECIDED_BY, {
      deviceId: 'k-emb',
      seq: { next: () => 1 },
      expiryS: 10,
    });
    assert.deepEqual(await link.publishDecision('front', payload), { delivered: true });
    const got = await sub.waitFor((m) => m.topic === 'fghv/k-emb/front/decision');
    assert.equal(got.retain, false);
    assert.equal(JSON.parse(got.payload).id, payload.id);

    await link.close();
    await sub.waitFor((m) => m.topic === 'fghv/k-emb/availability' && m.payload === 'offline');
    assert.equal(link.counters().connected, false);
  });

  /**
   * A gate's client with a persistent session is away while an accept is published with a 1 s
   * expiry, and comes back 2.5 s later: does the broker hand it the expired accept?
   */
  async function staleAcceptDelivered(kind: 'mosquitto' | 'aedes'): Promise<boolean> {
    const broker = await startEmbeddedBroker('127.0.0.1', 0, kind);
    const link = new ContractLink(linkOptions(broker.url, 'k-exp'));
    try {
      const version = kind === 'mosquitto' ? 5 : 4;
      const opts = {
        protocolVersion: version,
        clientId: `gate-${kind}`,
        clean: false,
        reconnectPeriod: 0,
        ...(version === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
      } as const;
      const gate = await connectAsync(broker.url, opts);
      await gate.subscribeAsync('fghv/k-exp/front/decision', { qos: 1 });
      await gate.endAsync();
      link.start();
      assert.equal(await link.waitConnected(5000), true);
      assert.equal(link.protocolVersion, version);
      const payload = buildDecisionPayload(sessionDecision(), DECIDED_BY, {
        deviceId: 'k-exp',
        seq: { next: () => 1 },
        expiryS: 1,
      });
      assert.deepEqual(await link.publishDecision('front', payload), { delivered: true });
      await new Promise((r) => setTimeout(r, 2500));
      const back = await connectAsync(broker.url, opts);
      let got = false;
      back.on('message', (topic) => {
        if (topic === 'fghv/k-exp/front/decision') got = true;
      });
      await new Promise((r) => setTimeout(r, 1500));
      await back.endAsync(true);
      return got;
    } finally {
      await link.close();
      await broker.close();
    }
  }

  test('mosquitto (the default when installed): MQTT 5, an expired accept is never delivered', {
    skip: existsSync(MOSQUITTO_BIN) ? false : `needs ${MOSQUITTO_BIN} (apt install mosquitto)`,
  }, async () => {
    const broker = await startEmbeddedBroker('127.0.0.1', 0);
    assert.equal(broker.kind, 'mosquitto');
    assert.equal(broker.protocolVersion, 5);
    await broker.close();
    assert.equal(await staleAcceptDelivered('mosquitto'), false);
    // The measured reason for the default: aedes hands the same client the expired accept.
    assert.equal(await staleAcceptDelivered('aedes'), true);
  });

  test('a taken port fails with MQTT_BROKER_START and points at mqtt.url', async (t) => {
    const first = await startEmbeddedBroker('127.0.0.1', 0);
    t.after(() => first.close());
    await assert.rejects(startEmbeddedBroker('127.0.0.1', first.port), (e) => {
      assert.ok(isKioskError(e, 'KIOSK_E_MQTT_BROKER_START'));
      assert.match(e.message, /already in use/);
      assert.match(e.message, /mqtt\.url/);
      assert.equal(e.details?.port, first.port);
      return true;
    });
  });

  test('a QoS 1 message unacknowledged when the connection dies is sent again after reconnect', async (t) => {
    const { Aedes } = await import('aedes');
    let stalled = 0;
    const broker = await Aedes.createBroker({
      // The first decision is never acknowledged and its connection is cut: a broker crash mid-flight.
      authorizePublish(client, packet, callback) {
        if (packet.topic.endsWith('/decision') && stalled++ === 0) {
          client?.conn.destroy();
          return;
        }
        callback(null);
      },
    });
    const server = net.createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const sub = await collect(url, ['fghv/k-retry/+/decision'], 4);
    t.after(() => sub.close());
    const link = new ContractLink(linkOptions(url, 'k-retry', { protocolVersion: 4 }));
    t.after(() => link.close());
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    const outcome = await link.publish({
      topic: link.topics.decision('front'),
      payload: 'd1',
      qos: 1,
      retain: false,
    });
    assert.deepEqual(outcome, { delivered: true });
    assert.equal(stalled, 2, 'published twice: once cut off, once acknowledged');
    await sub.waitFor((m) => m.payload === 'd1');
    const counters = link.counters();
    assert.equal(counters.connects, 2);
    assert.equal(counters.disconnects, 1);
    assert.equal(counters.dropped, 0);
  });
});
