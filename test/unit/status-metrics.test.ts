import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InfoPayload, MqttCounters } from '../../daemon/contract/payloads.js';
import { type CameraTotals, type MetricsSource, StatusMetrics } from '../../daemon/status/metrics.js';
import { ratesBetween } from '../../daemon/status/status-json.js';
import { mqttCounters } from '../helpers/mqtt-counters.js';
import { parsePromText, sumOf } from '../helpers/prom-text.js';

const info: InfoPayload = {
  v: 1,
  device_id: 'd1',
  software: { name: 'fghv-kiosk', version: 't' },
  model: {
    name: 'minifasnet-v2',
    version: '1.0.0',
    sha256: 'ab'.repeat(32),
    family: 'softmax',
    purpose: 'reference',
  },
  detector: { name: 'blazeface', model: null },
  execution_provider: 'cpu',
  cameras: [{ id: 'front', kind: 'file', source: 'x.mp4' }],
  decision_public_key: null,
  capabilities: [],
  config_hash: null,
};

function fakeSource() {
  const totals: CameraTotals = { camera: 'front', captured: 10, processed: 8, dropped: 2, stale: 0 };
  const mqtt: MqttCounters = mqttCounters();
  const state: { value: string; down_s?: number } = { value: 'running' };
  const source: MetricsSource = {
    info,
    cameraTotals: () => [{ ...totals }],
    cameraStates: () => [{ id: 'front', state: state.value, down_s: state.down_s ?? null }],
    mqttCounters: () => ({ ...mqtt }),
    auditBacklog: () => null,
    preview: () => ({ clients: 0, sent: 0, skippedSlow: 0 }),
  };
  return { source, totals, mqtt, state };
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

describe('Prometheus metrics', () => {
  it('names every family fghv_<what>_<unit>, counters ending in _total, durations in seconds', async () => {
    const m = new StatusMetrics(fakeSource().source, { processMetrics: false });
    const p = parsePromText(await m.render());
    const expected: Record<string, string> = {
      fghv_stage_duration_seconds: 'histogram',
      fghv_decisions_total: 'counter',
      fghv_frames_captured_total: 'counter',
      fghv_frames_processed_total: 'counter',
      fghv_frames_dropped_total: 'counter',
      fghv_frames_stale_total: 'counter',
      fghv_frames_gated_total: 'counter',
      fghv_frames_bad_total: 'counter',
      fghv_camera_up: 'gauge',
      fghv_camera_down_seconds: 'gauge',
      fghv_mqtt_connected: 'gauge',
      fghv_mqtt_queued_messages: 'gauge',
      fghv_mqtt_published_total: 'counter',
      fghv_mqtt_dropped_total: 'counter',
      fghv_audit_backlog_records: 'gauge',
      fghv_model_info: 'gauge',
      fghv_status_preview_clients: 'gauge',
      fghv_status_preview_frames_total: 'counter',
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(p.types.get(name), type, name);
    for (const [name, type] of p.types) {
      assert.match(name, NAME);
      assert.ok(name.startsWith('fghv_'), name);
      if (type === 'counter') assert.ok(name.endsWith('_total'), `${name} is a counter`);
      if (type === 'histogram') assert.ok(name.endsWith('_seconds'), `${name} is a duration`);
    }
  });

  it('moves counters with the daemon totals and observed events, and restarts from a source reset', async () => {
    const { source, totals, mqtt, state } = fakeSource();
    const m = new StatusMetrics(source, { processMetrics: false });
    let p = parsePromText(await m.render());
    assert.equal(sumOf(p, 'fghv_frames_captured_total', { camera: 'front' }), 10);
    assert.equal(sumOf(p, 'fghv_frames_processed_total'), 8);
    assert.equal(sumOf(p, 'fghv_camera_up', { camera: 'front' }), 1);
    assert.equal(
      sumOf(p, 'fghv_model_info', {
        model: 'minifasnet-v2',
        provider: 'cpu',
        detector: 'blazeface',
        purpose: 'reference',
      }),
      1,
    );

    totals.captured = 25;
    totals.processed = 20;
    totals.bad = 3;
    mqtt.connected = false;
    mqtt.queued = 4;
    state.value = 'failed';
    state.down_s = 12.5;
    m.observeStage('detect', 12);
    m.observeStage('detect', 700);
    m.observeStage('infer', Number.NaN);
    m.observeDecision({
      camera_id: 'front',
      decision: 'retry',
      reason: 'low_quality',
      quality_gate: 'sharpness',
    });
    m.observeDecision({ camera_id: 'front', decision: 'accept', reason: 'live_verified' });
    p = parsePromText(await m.render());
    assert.equal(sumOf(p, 'fghv_frames_captured_total'), 25);
    assert.equal(sumOf(p, 'fghv_frames_processed_total'), 20);
    assert.equal(sumOf(p, 'fghv_frames_bad_total', { camera: 'front' }), 3);
    assert.equal(sumOf(p, 'fghv_camera_up'), 0);
    assert.equal(sumOf(p, 'fghv_camera_down_seconds', { camera: 'front' }), 12.5);
    assert.equal(sumOf(p, 'fghv_mqtt_connected'), 0);
    assert.equal(sumOf(p, 'fghv_mqtt_queued_messages'), 4);
    assert.equal(sumOf(p, 'fghv_stage_duration_seconds_count', { stage: 'detect' }), 2);
    assert.equal(sumOf(p, 'fghv_stage_duration_seconds_count', { stage: 'infer' }), 0);
    assert.equal(sumOf(p, 'fghv_stage_duration_seconds_bucket', { stage: 'detect', le: '0.025' }), 1);
    assert.equal(sumOf(p, 'fghv_stage_duration_seconds_bucket', { stage: 'detect', le: '+Inf' }), 2);
    assert.equal(
      sumOf(p, 'fghv_decisions_total', {
        decision: 'retry',
        reason: 'low_quality',
        quality_gate: 'sharpness',
      }),
      1,
    );
    assert.equal(sumOf(p, 'fghv_decisions_total', { decision: 'accept', quality_gate: '' }), 1);

    // The camera was reopened and its driver counts from zero: the counter keeps growing.
    totals.captured = 5;
    p = parsePromText(await m.render());
    assert.equal(sumOf(p, 'fghv_frames_captured_total'), 30);
  });

  it('computes per-camera frame rates between two samples', () => {
    const t = (captured: number, processed: number, dropped: number): CameraTotals => ({
      camera: 'front',
      captured,
      processed,
      dropped,
      stale: 0,
    });
    assert.deepEqual(
      ratesBetween({ at: 1000, totals: [t(10, 8, 2)] }, { at: 3000, totals: [t(40, 28, 12)] }),
      {
        front: { capture: 15, processed: 10, dropped: 5 },
      },
    );
    assert.deepEqual(
      ratesBetween({ at: 1000, totals: [t(10, 8, 2)] }, { at: 1000, totals: [t(40, 28, 12)] }),
      {},
    );
    assert.deepEqual(ratesBetween({ at: 0, totals: [] }, { at: 1000, totals: [t(1, 1, 1)] }), {});
  });
});
