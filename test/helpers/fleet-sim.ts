/**
 * Many simulated devices in one process, speaking the real contract on their own topics:
 * retained `availability` (birth, and the last will), retained `info` with the device's own
 * Ed25519 decision key, `health` (QoS 0) and signed live decisions (QoS 1, message expiry),
 * each device with its own seq. One MQTT 5 connection per device; a device whose broker goes
 * away reconnects to the next of its URLs (as the daemon's link does). Each decision goes out
 * live (expiring) and as an audit copy; the audit copies the old broker never acknowledged,
 * plus those it acknowledged in the last 60 s, are re-sent after a failover (an in-memory
 * stand-in for the daemon's durable outbox). For the fleet console test and the
 * fleet benchmark; the daemon's own failover is tested on the daemon itself.
 */
import { generateKeyPairSync } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';
import { buildDecisionPayload, type InfoPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { Topics } from '../../daemon/contract/topics.js';
import { DECIDED_BY, sessionDecision, spoofReject } from './decision-input.js';

export interface SimFleetOptions {
  /** Brokers each device tries in turn (device i starts at urls[i % urls.length]). */
  urls: string[];
  n: number;
  prefix?: string;
  idPrefix?: string;
  /** Per device; 0: none. */
  decisionEveryMs?: number;
  healthEveryMs?: number;
  /** Connections opened at once while starting. Default 100. */
  batch?: number;
  /** Extra fields in every decision (e.g. `sent_ms` for latency). */
  stamp?: () => Record<string, unknown>;
  /** Devices that make no decisions of their own (their topics are left to a test). */
  quiet?: (i: number) => boolean;
  /** info of device i before it is published (purpose, overrides...). */
  infoOf?: (i: number, info: InfoPayload) => InfoPayload;
}

export interface SimDevice {
  id: string;
  topics: Topics;
  client: MqttClient;
  signer: DecisionSigner;
  seq: number;
  /** Index of the URL in use. */
  urlIndex: number;
  connects: number;
  lastConnectAt: number;
  /** Decisions not acknowledged yet, by seq (payload text). */
  pending: Map<number, string>;
  /** Acknowledged decisions: [ack time, seq, text], oldest first, the last 60 s. */
  acked: [number, number, string][];
  /** The URL index of the last connection (a change means a failover). */
  lastUrlIndex: number;
}

export interface SimFleet {
  devices: SimDevice[];
  sent: { decisions: number; health: number; decisionsAcked: number; resent: number };
  /** Publishes one signed live decision of device i now. */
  decide(i: number): number;
  /** Stops the devices' timers (decisions, health); connections stay open. */
  stop(): void;
  /** Decisions not acknowledged yet, over all devices. */
  pending(): number;
  close(): Promise<void>;
}

export async function startSimFleet(o: SimFleetOptions): Promise<SimFleet> {
  const prefix = o.prefix ?? 'fghv';
  const idPrefix = o.idPrefix ?? 'sim';
  const batch = o.batch ?? 100;
  const sent = { decisions: 0, health: 0, decisionsAcked: 0, resent: 0 };
  const devices: SimDevice[] = [];
  const timers: NodeJS.Timeout[] = [];
  let closing = false;

  const open = (d: SimDevice, info: string): Promise<void> =>
    new Promise((resolve) => {
      const url = o.urls[d.urlIndex % o.urls.length] as string;
      const client = connect(url, {
        protocolVersion: 5,
        clientId: `fghv-${d.id}`,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        keepalive: 30,
        will: { topic: d.topics.availability, payload: Buffer.from('offline'), qos: 1, retain: true },
      });
      d.client = client;
      let settled = false;
      client.on('connect', () => {
        d.connects++;
        d.lastConnectAt = Date.now();
        client.publish(d.topics.availability, 'online', { qos: 1, retain: true });
        client.publish(d.topics.info, info, { qos: 1, retain: true });
        // The outbox stand-in: on another broker, what the old one acknowledged lately too.
        const at = d.urlIndex % o.urls.length;
        const failover = d.connects > 1 && at !== d.lastUrlIndex;
        d.lastUrlIndex = at;
        const again = [
          ...(failover
            ? d.acked.filter(([at]) => at >= Date.now() - 60_000).map(([, s, t]) => [s, t] as const)
            : []),
          ...d.pending.entries(),
        ];
        for (const [seq, text] of again) {
          sent.resent++;
          client.publish(d.topics.audit, text, { qos: 1 }, (err) => {
            if (!err) ack(d, seq, text);
          });
        }
        if (!settled) {
          settled = true;
          resolve();
        }
      });
      client.on('error', () => undefined);
      client.on('close', () => {
        if (closing || client !== d.client) return;
        // Failover: the next broker, after a short jittered pause.
        d.urlIndex++;
        setTimeout(() => void open(d, info), 200 + Math.floor(Math.random() * 800)).unref();
        if (!settled) {
          settled = true;
          resolve();
        }
      });
    });

  const ack = (d: SimDevice, seq: number, text: string) => {
    if (d.pending.delete(seq)) sent.decisionsAcked++;
    const now = Date.now();
    d.acked.push([now, seq, text]);
    while (d.acked.length && (d.acked[0] as [number, number, string])[0] < now - 60_000) d.acked.shift();
  };

  const infos: string[] = [];
  for (let i = 0; i < o.n; i++) {
    const id = `${idPrefix}-${String(i).padStart(5, '0')}`;
    const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    const topics = new Topics(prefix, id);
    const base: InfoPayload = {
      v: 1,
      device_id: id,
      software: { name: 'fghv-kiosk', version: 'sim' },
      model: { name: 'sim', version: '1', sha256: 'a'.repeat(64), family: 'fghv', purpose: 'production' },
      detector: { name: 'blazeface', model: null },
      execution_provider: 'cpu',
      cameras: [{ id: 'front', kind: 'fake', source: 'timer' }],
      decision_public_key: signer.publicKey,
      capabilities: ['decision', 'health', 'availability', 'signed_decisions'],
      config_hash: 'sim',
      threshold_overrides: null,
      model_thresholds: { p_real_min: 0.5, var_max: 0.01 },
    };
    infos.push(JSON.stringify(o.infoOf ? o.infoOf(i, base) : base));
    devices.push({
      id,
      topics,
      client: null as unknown as MqttClient,
      signer,
      seq: 0,
      urlIndex: i % o.urls.length,
      connects: 0,
      lastConnectAt: 0,
      pending: new Map(),
      acked: [],
      lastUrlIndex: i % o.urls.length,
    });
  }
  for (let i = 0; i < o.n; i += batch) {
    await Promise.all(devices.slice(i, i + batch).map((d, j) => open(d, infos[i + j] as string)));
  }

  const decide = (i: number): number => {
    const d = devices[i] as SimDevice;
    d.seq++;
    const seq = d.seq;
    const model = { name: 'sim', version: '1', sha256: 'a'.repeat(64) };
    const input = seq % 3 === 0 ? spoofReject({ trackId: seq }) : sessionDecision({ trackId: seq });
    // The stamp (sent_ms) is under the signature: the console verifies the message as sent.
    const built = {
      ...buildDecisionPayload(
        input,
        { ...DECIDED_BY, model },
        { deviceId: d.id, seq: { next: () => seq }, expiryS: 10 },
      ),
      ...(o.stamp ? o.stamp() : {}),
    };
    const live = JSON.stringify(d.signer.sign(built));
    // As the daemon: an audit copy (its own signature, no expiry) is what is kept until a
    // broker acknowledges it; the live one expires and is never re-sent.
    const audit = JSON.stringify(d.signer.sign({ ...built, delivery: 'audit' as const }));
    sent.decisions++;
    d.pending.set(seq, audit);
    if (!d.client.connected) return seq;
    d.client.publish(d.topics.decision('front'), live, { qos: 1, properties: { messageExpiryInterval: 10 } });
    d.client.publish(d.topics.audit, audit, { qos: 1 }, (err) => {
      if (!err) ack(d, seq, audit);
    });
    return seq;
  };

  devices.forEach((d, i) => {
    const spread = (every: number) => Math.floor((i / o.n) * every);
    if (o.decisionEveryMs && !o.quiet?.(i)) {
      const every = o.decisionEveryMs;
      timers.push(
        setTimeout(() => {
          decide(i);
          timers.push(setInterval(() => decide(i), every));
        }, spread(every)),
      );
    }
    if (o.healthEveryMs) {
      const every = o.healthEveryMs;
      const health = () => {
        if (!d.client.connected) return;
        sent.health++;
        d.client.publish(
          d.topics.health,
          JSON.stringify({
            v: 1,
            ts: new Date().toISOString(),
            device_id: d.id,
            uptime_s: 1,
            fps: { capture: 15, processed: 15, dropped: 0 },
            cameras: [{ id: 'front', state: 'running', capture_fps: 15 }],
          }),
          { qos: 0 },
        );
      };
      timers.push(
        setTimeout(() => {
          health();
          timers.push(setInterval(health, every));
        }, spread(every)),
      );
    }
  });

  return {
    devices,
    sent,
    decide,
    stop() {
      for (const t of timers) clearTimeout(t);
    },
    pending: () => devices.reduce((n, d) => n + d.pending.size, 0),
    async close() {
      closing = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(devices.map((d) => d.client.endAsync(true).catch(() => undefined)));
    },
  };
}
