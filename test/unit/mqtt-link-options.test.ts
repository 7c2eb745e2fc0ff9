import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { isKioskError } from '../../core/errors.js';
import {
  backoffDelayMs,
  linkOptionsFromConfig,
  readMqttPassword,
  redactUrl,
} from '../../daemon/mqtt/mqtt-link.js';

test('backoff doubles per attempt between min and max, jitter in the upper half', () => {
  // random = 0 gives ceiling/2 (never below min), random = 1 gives the ceiling.
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((a) => backoffDelayMs(a, 500, 30000, 0)),
    [500, 500, 1000, 2000, 4000, 15000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10, 60].map((a) => backoffDelayMs(a, 500, 30000, 1)),
    [500, 1000, 2000, 4000, 8000, 30000, 30000],
  );
  assert.equal(backoffDelayMs(3, 500, 30000, 0.5), 3000);
});

test('password comes from password_file (first line) or FGHV_MQTT_PASSWORD', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fghv-pw-'));
  try {
    const file = path.join(dir, 'pw');
    writeFileSync(file, 's3cret\n');
    assert.equal(readMqttPassword({ password_file: file }, { FGHV_MQTT_PASSWORD: 'env' }), 's3cret');
    assert.equal(readMqttPassword({ password_file: null }, { FGHV_MQTT_PASSWORD: 'env' }), 'env');
    assert.equal(readMqttPassword({ password_file: null }, {}), null);
    assert.throws(
      () => readMqttPassword({ password_file: path.join(dir, 'missing') }, {}),
      (e) => isKioskError(e, 'KIOSK_E_MQTT_CONNECT') && !e.message.includes('s3cret'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linkOptionsFromConfig maps the mqtt section', () => {
  const cfg = configSchema.parse({ mqtt: { prefix: 'site', reconnect_min_ms: 100 } });
  const o = linkOptionsFromConfig(cfg.mqtt, 'k1', 'mqtt://127.0.0.1:1883', {}, {});
  assert.equal(o.prefix, 'site');
  assert.equal(o.protocolVersion, 5);
  assert.equal(o.reconnectMinMs, 100);
  assert.equal(o.decisionExpiryS, 10);
  assert.equal(o.password, null);
});

test('redactUrl hides credentials', () => {
  assert.equal(redactUrl('mqtt://user:pw@broker:1883'), 'mqtt://[redacted]@broker:1883');
  assert.equal(redactUrl('mqtts://broker:8883'), 'mqtts://broker:8883');
});
