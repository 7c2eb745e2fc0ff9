import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HealthPayload, MqttCounters, SystemFigures } from '../../daemon/contract/payloads.js';
import { HealthReporter, type PipelineFigures } from '../../daemon/telemetry/health.js';
import { LatencyRing, percentile, StageLatencies } from '../../daemon/telemetry/latency.js';
import { mqttCounters } from '../helpers/mqtt-counters.js';

test('percentile is nearest-rank on fixed vectors', () => {
  const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(v, 0.5), 5);
  assert.equal(percentile(v, 0.95), 10);
  assert.equal(percentile(v, 0.9), 9);
  assert.equal(percentile(v, 0), 1);
  assert.equal(percentile([42], 0.95), 42);
  assert.equal(percentile([], 0.5), null);
});

test('LatencyRing keeps only the last N samples', () => {
  const ring = new LatencyRing(4);
  assert.deepEqual(ring.figures(), { p50: null, p95: null, n: 0 });
  for (const ms of [100, 100, 100, 100, 1, 2, 3]) ring.record(ms);
  // Held: 100, 1, 2, 3 -> sorted 1, 2, 3, 100.
  assert.deepEqual(ring.figures(), { p50: 2, p95: 100, n: 4 });
  ring.record(Number.NaN);
  assert.equal(ring.figures().n, 4);
  assert.throws(() => new LatencyRing(0), RangeError);
});

test('StageLatencies reports each stage', () => {
  const s = new StageLatencies(8);
  for (const ms of [10, 20, 30]) s.record('detect', ms);
  s.record('liveness', 40.04);
  assert.deepEqual(s.snapshot(), {
    detect: { p50: 20, p95: 30, n: 3 },
    liveness: { p50: 40, p95: 40, n: 1 },
  });
});

const counters: MqttCounters = mqttCounters();
const system: SystemFigures = {
  cpu_load_pct: 12.5,
  mem_used_pct: 40,
  process_rss_mb: 80,
  cpu_temp_c: null,
  gpu: null,
};
const pipeline: PipelineFigures = {
  fps: { capture: 30, processed: 12, dropped: 18 },
  latency_ms: { detect: { p50: 20, p95: 30, n: 3 } },
  cameras: [{ id: 'front', state: 'running', capture_fps: 30 }],
  model: { name: 'm', version: '1', sha256: 'x' },
  execution_provider: 'cpu',
};

test('HealthReporter publishes on its interval, skips a tick while one is slow, stops cleanly', async (t) => {
  // Mocked interval timer: the ticks are counted exactly, whatever the machine's load.
  t.mock.timers.enable({ apis: ['setInterval'] });
  const settle = () => new Promise((r) => setImmediate(r));
  const sent: HealthPayload[] = [];
  let now = Date.parse('2026-11-28T09:00:00.000Z');
  /** While set, system() waits for this (a tick that hangs). */
  let slow: { until: Promise<void> } | null = null;
  let systemCalls = 0;
  const reporter = new HealthReporter({
    deviceId: 'k1',
    intervalS: 0.02,
    sink: { publishHealth: (p) => sent.push(p), counters: () => counters },
    pipeline: () => pipeline,
    system: async () => {
      systemCalls++;
      if (slow !== null) await slow.until;
      return system;
    },
    now: () => now,
  });
  now += 65_000;
  await reporter.start();
  t.mock.timers.tick(19);
  await settle();
  assert.equal(sent.length, 0, 'nothing before the first interval');
  t.mock.timers.tick(1);
  await settle();
  assert.equal(sent.length, 1, 'one tick at 20 ms');
  for (let i = 0; i < 2; i++) {
    t.mock.timers.tick(20);
    await settle();
  }
  assert.equal(sent.length, 3, 'one per interval');
  // A tick whose system figures hang: later intervals are skipped, not stacked.
  let release = () => {};
  slow = {
    until: new Promise((r) => {
      release = r;
    }),
  };
  t.mock.timers.tick(20);
  await settle();
  t.mock.timers.tick(60);
  await settle();
  assert.equal(systemCalls, 4, 'three intervals passed during the slow tick and started nothing');
  assert.equal(sent.length, 3);
  slow = null;
  release();
  await settle();
  assert.equal(sent.length, 4, 'the slow tick published when it finished');
  await reporter.stop();
  const count = sent.length;
  t.mock.timers.tick(200);
  await settle();
  assert.equal(sent.length, count, 'no tick after stop()');
  const p = sent[0] as HealthPayload;
  assert.equal(p.v, 1);
  assert.equal(p.device_id, 'k1');
  assert.equal(p.uptime_s, 65);
  assert.equal(p.ts, '2026-11-28T09:01:05.000Z');
  assert.deepEqual(p.fps, pipeline.fps);
  assert.deepEqual(p.mqtt, counters);
  assert.deepEqual(p.system, system);
  assert.equal(p.outbox, null);
  assert.equal(p.execution_provider, 'cpu');
});
