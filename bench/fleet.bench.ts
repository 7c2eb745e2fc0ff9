/**
 * Fleet simulation: one process plays N devices (one MQTT connection each) publishing health
 * (QoS 0, every second) and signed-size decisions (QoS 1, every 2 s per device, 10 s expiry)
 * to a local mosquitto; two consumers share the load with a shared subscription
 * (`$share/fleet/...`). Reports messages per second, end-to-end latency and loss per N.
 * Usage: node dist/bench/fleet.bench.js [N...]   (default 100 300 1000). Results: bench/fleet.md.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { percentile } from '../daemon/telemetry/latency.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';

const DURATION_MS = 10_000;
const DRAIN_MS = 2_000;

interface Result {
  n: number;
  sentDecisions: number;
  gotDecisions: number;
  sentHealth: number;
  gotHealth: number;
  perSecond: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  connectMs: number;
}

async function runFleet(url: string, n: number): Promise<Result> {
  const latencies: number[] = [];
  let gotDecisions = 0;
  let gotHealth = 0;
  const consumers: MqttClient[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await connectAsync(url, {
      protocolVersion: 5,
      clientId: `consumer-${n}-${i}`,
      reconnectPeriod: 0,
    });
    c.on('message', (topic, payload) => {
      const sent = Number(JSON.parse(payload.toString()).sent_ms);
      latencies.push(Date.now() - sent);
      if (topic.endsWith('/decision')) gotDecisions++;
      else gotHealth++;
    });
    await c.subscribeAsync(['$share/fleet/fleet/+/+/decision', '$share/fleet/fleet/+/health'], { qos: 1 });
    consumers.push(c);
  }
  const t0 = Date.now();
  const devices: MqttClient[] = [];
  for (let i = 0; i < n; i += 50) {
    devices.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          connectAsync(url, {
            protocolVersion: 5,
            clientId: `dev-${n}-${i + j}`,
            reconnectPeriod: 0,
            will: {
              topic: `fleet/dev-${i + j}/availability`,
              payload: Buffer.from('offline'),
              qos: 1,
              retain: true,
            },
          }),
        ),
      )),
    );
  }
  const connectMs = Date.now() - t0;
  const pad = 'x'.repeat(560); // a signed decision is ~700 bytes of JSON
  let sentDecisions = 0;
  let sentHealth = 0;
  const timers: NodeJS.Timeout[] = [];
  devices.forEach((d, i) => {
    const id = `dev-${i}`;
    // Spread the devices over the second so the load is steady, as a real fleet's is.
    const offset = Math.floor((i / n) * 1000);
    timers.push(
      setTimeout(() => {
        let tick = 0;
        const each = setInterval(() => {
          tick++;
          sentHealth++;
          d.publish(
            `fleet/${id}/health`,
            JSON.stringify({ v: 1, device_id: id, sent_ms: Date.now(), pad: pad.slice(0, 300) }),
            { qos: 0 },
          );
          if (tick % 2 === 0) {
            sentDecisions++;
            d.publish(
              `fleet/${id}/front/decision`,
              JSON.stringify({ v: 1, device_id: id, seq: tick / 2, sent_ms: Date.now(), pad }),
              {
                qos: 1,
                properties: { messageExpiryInterval: 10 },
              },
            );
          }
        }, 1000);
        timers.push(each);
      }, offset),
    );
  });
  await new Promise((r) => setTimeout(r, DURATION_MS));
  for (const t of timers) clearTimeout(t);
  await new Promise((r) => setTimeout(r, DRAIN_MS));
  await Promise.all(devices.map((d) => d.endAsync(true)));
  await Promise.all(consumers.map((c) => c.endAsync(true)));
  latencies.sort((a, b) => a - b);
  return {
    n,
    sentDecisions,
    gotDecisions,
    sentHealth,
    gotHealth,
    perSecond: Math.round((gotDecisions + gotHealth) / (DURATION_MS / 1000)),
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    connectMs,
  };
}

const ns = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const broker = await startMosquitto();
try {
  console.log(
    '| devices | connect all (ms) | decisions sent / received (QoS 1) | health sent / received (QoS 0) | msgs/s received | latency p50 / p95 / p99 (ms) | loss |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const n of ns.length ? ns : [100, 300, 1000]) {
    const r = await runFleet(broker.url, n);
    const sent = r.sentDecisions + r.sentHealth;
    const lost = sent - r.gotDecisions - r.gotHealth;
    console.log(
      `| ${r.n} | ${r.connectMs} | ${r.sentDecisions} / ${r.gotDecisions} | ${r.sentHealth} / ${r.gotHealth} | ${r.perSecond} | ${r.p50} / ${r.p95} / ${r.p99} | ${lost} (${((lost / sent) * 100).toFixed(2)} %) |`,
    );
  }
} finally {
  await broker.stop();
}
