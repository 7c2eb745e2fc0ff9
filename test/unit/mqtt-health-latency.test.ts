import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HealthPayload, MqttCounters, SystemFigures } from '../../daemon/contract/topics.js';
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

test('HealthReporter publishes on its interval and stops cleanly', async () => {
  const sent: HealthPayload[] = [];
  let now = Date.parse('2026-11-28T09:00:00.000Z');
  const reporter = new HealthReporter({
    deviceId: 'k1',
    intervalS: 0.02,
    sink: { publishHealth: (p) => sent.push(p), counters: () => counters },
    pipeline: () => pipeline,
    system: async () => system,
    now: () => now,
  });
  now += 65_000;
  await reporter.start();
  await new Promise((r) => setTimeout(r, 130));
  await reporter.stop();
  const count = sent.length;
  assert.ok(count >= 2, `expected at least 2 ticks in 130 ms at 20 ms, got ${count}`);
  await new Promise((r) => setTimeout(r, 60));
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
