import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { isKioskError } from '../../core/errors.js';
import { ContractLink, defaultClientId, linkOptionsFromConfig } from '../../daemon/contract/contract-link.js';
import { backoffDelayMs, readMqttPassword, redactUrl } from '../../daemon/mqtt/mqtt-link.js';

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
  assert.equal(o.password, null);
  assert.equal(o.clientId, null);
});

test('the contract link names the client after the device and owns its availability topic', () => {
  const cfg = configSchema.parse({ mqtt: { prefix: 'site' } });
  const link = new ContractLink(linkOptionsFromConfig(cfg.mqtt, 'k1', 'mqtt://127.0.0.1:1883', {}, {}));
  assert.equal(link.clientId, 'fghv-k1');
  assert.equal(link.topics.availability, 'site/k1/availability');
  assert.equal(
    new ContractLink(linkOptionsFromConfig(cfg.mqtt, 'fghv-x', 'mqtt://h', {}, {})).clientId,
    'fghv-x',
  );
  const named = configSchema.parse({ mqtt: { client_id: 'gate-7' } });
  assert.equal(
    new ContractLink(linkOptionsFromConfig(named.mqtt, 'k1', 'mqtt://h', {}, {})).clientId,
    'gate-7',
  );
  assert.equal(defaultClientId('k2'), 'fghv-k2');
});

test('redactUrl hides credentials', () => {
  assert.equal(redactUrl('mqtt://user:pw@broker:1883'), 'mqtt://[redacted]@broker:1883');
  assert.equal(redactUrl('mqtts://broker:8883'), 'mqtts://broker:8883');
});
