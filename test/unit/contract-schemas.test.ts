import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { buildAuditEvent } from '../../daemon/contract/audit/events.js';
import { COMMAND_NAMES } from '../../daemon/contract/commands/request.js';
import { ContractSchemas } from '../../daemon/contract/contract-schema.js';
import { contractCapabilities } from '../../daemon/contract/contract-services.js';
import { haDiscoveryMessages } from '../../daemon/contract/ha-discovery.js';
import {
  buildDecisionPayload,
  type DecisionPayload,
  type InfoPayload,
  monoToIso,
} from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { Topics } from '../../daemon/contract/topics.js';
import { HealthReporter } from '../../daemon/telemetry/health.js';
import { mqttCounters } from '../helpers/mqtt-counters.js';
import { repoRoot } from '../helpers/paths.js';

const dir = path.join(repoRoot, 'contract');
const schemas = new ContractSchemas(path.join(dir, 'schemas'));
const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);

/** A low-quality retry as the daemon publishes it, signed after `over` replaced payload fields. */
const decision = (over: Record<string, unknown> = {}) =>
  signer.sign({
    ...buildDecisionPayload(
      {
        cameraId: 'front',
        trackId: 1,
        decision: 'retry',
        reason: 'low_quality',
        qualityGate: 'sharpness',
        scores: {},
        frames: { seen: 3, inferred: 0, live: 0, verified: 0 },
        quality: { face_px: 90, sharpness: 0.01, brightness: 0.5 },
        firstFrameMono: 600,
        lastFrameMono: 998,
        decidedAtMono: 1000,
        presenceSinceMono: 600,
      },
      { model: { name: 'm', version: '1', sha256: 'ab' }, execution_provider: 'cpu' },
      { deviceId: 'k1', seq: { next: () => 4 }, expiryS: 10, nowMono: () => 1000 },
    ),
    ...over,
  } as DecisionPayload);

const info: InfoPayload = {
  v: 1,
  device_id: 'k1',
  software: { name: 'fghv-kiosk', version: '0.1.0' },
  model: { name: 'm', version: '1', sha256: 'ab', family: 'fghv', purpose: 'demo' },
  detector: { name: 'blazeface', model: null },
  execution_provider: 'cpu',
  cameras: [{ id: 'front', kind: 'file', source: 'x.mp4' }],
  decision_public_key: signer.publicKey,
  capabilities: contractCapabilities({ enabled: true, fleet_public_keys: [] }),
  config_hash: '0123456789abcdef',
};

describe('contract JSON Schemas', () => {
  test('what the daemon builds validates: decision, info, health, audit events, responses, availability', async () => {
    assert.deepEqual(schemas.validate('decision.json', decision()), []);
    assert.deepEqual(schemas.validate('audit.json', { ...decision(), replayed: true }), []);
    assert.deepEqual(schemas.validate('info.json', info), []);
    assert.deepEqual(
      schemas.validate('info.json', { ...info, model: null, detector: null, decision_public_key: null }),
      [],
    );
    const health = await new HealthReporter({
      deviceId: 'k1',
      intervalS: 30,
      sink: {
        publishHealth: () => undefined,
        counters: () => mqttCounters(),
      },
      outbox: () => ({ pending: 2, oldest_age_s: 4 }),
      system: async () => ({
        cpu_load_pct: 3.2,
        mem_used_pct: null,
        process_rss_mb: 80,
        cpu_temp_c: null,
        gpu: null,
      }),
      pipeline: () => ({
        fps: { capture: 30, processed: 12.5, dropped: 17.5 },
        latency_ms: { detect: { p50: 5, p95: 9, n: 40 }, liveness: { p50: null, p95: null, n: 0 } },
        cameras: [{ id: 'front', state: 'running', capture_fps: 30 }],
        model: { name: 'm', version: '1', sha256: 'ab' },
        execution_provider: 'cpu',
      }),
    }).snapshot();
    assert.deepEqual(schemas.validate('health.json', health), []);
    for (const event of ['camera_lost', 'command_executed', 'model_changed'] as const) {
      assert.deepEqual(schemas.validate('audit.json', buildAuditEvent('k1', event, { a: 1 })), []);
    }
    assert.deepEqual(
      schemas.validate('command-response.json', { transaction: 1, status: 'ok', data: { x: 1 } }),
      [],
    );
    assert.deepEqual(
      schemas.validate('command-response.json', {
        transaction: null,
        status: 'error',
        data: null,
        error: { code: 'KIOSK_E_COMMAND_MALFORMED', message: 'm' },
      }),
      [],
    );
    assert.deepEqual(schemas.validate('availability.json', 'online'), []);
    assert.deepEqual(
      schemas.validate('command-request.json', { transaction: 1, thresholds: { var_max: 0.1 } }),
      [],
    );
  });

  test('a decision says when its presence began and, for accept and reject, since when it is held', () => {
    const session = {
      cameraId: 'front',
      trackId: 4,
      decision: 'accept',
      reason: 'live_verified',
      frames: { seen: 5, inferred: 5, live: 5, verified: 5 },
      scores: { p_real: 0.9 },
      quality: { face_px: 150, sharpness: 0.5, brightness: 0.5 },
      firstFrameMono: 5000,
      lastFrameMono: 5400,
      decidedAtMono: 5400,
      presenceSinceMono: 1000,
    } as const;
    const by = { model: { name: 'm', version: '1', sha256: 'ab' }, execution_provider: 'cpu' };
    const env = { deviceId: 'k1', seq: { next: () => 5 }, expiryS: 10, nowMono: () => 5500 };
    const before = Date.now();
    const accept = buildDecisionPayload(session, by, env);
    const since = Date.parse(accept.presence_since ?? '');
    // 4.5 s before publishing (mono 5500 - 1000), on the wall clock.
    assert.ok(since >= before - 4500 - 5 && since <= Date.now() - 4500 + 5, accept.presence_since);
    assert.equal(Date.parse(accept.held_since ?? '') - since, 4400);
    assert.deepEqual(schemas.validate('decision.json', decision(accept as never)), []);
    const retry = buildDecisionPayload({ ...session, decision: 'retry', reason: 'timeout' }, by, env);
    assert.equal(retry.held_since, undefined, 'a retry holds nobody');
    assert.deepEqual(schemas.validate('decision.json', decision(retry as never)), []);
    assert.equal(monoToIso(1000, 3000, Date.UTC(2026, 0, 1)), '2025-12-31T23:59:58.000Z');
    assert.match(schemas.validate('decision.json', decision({ held_since: 'then' })).join(), /date-time/);
  });

  test('violations are reported: unsigned, unknown reason, extra field, bad types, bad error code', () => {
    const { sig: _s, ...unsigned } = decision();
    assert.match(schemas.validate('decision.json', unsigned).join(), /missing sig/);
    assert.match(schemas.validate('decision.json', { ...decision(), reason: 'bored' }).join(), /reason/);
    assert.match(
      schemas.validate('decision.json', { ...decision(), image: 'base64...' }).join(),
      /image: not allowed/,
    );
    assert.match(
      schemas.validate('decision.json', { ...decision(), seq: 1.5 }).join(),
      /seq: expected integer/,
    );
    assert.match(schemas.validate('decision.json', { ...decision(), ts: 'yesterday' }).join(), /date-time/);
    assert.match(schemas.validate('audit.json', { v: 1 }).join(), /matches 0 of oneOf/);
    assert.match(
      schemas
        .validate('command-response.json', {
          transaction: 1,
          status: 'error',
          data: null,
          error: { code: 'E', message: '' },
        })
        .join(),
      /code/,
    );
    assert.match(schemas.validate('availability.json', 'maybe').join(), /not in/);
  });

  test('the AsyncAPI 3 document names every channel, resolves every schema, and lists every command', () => {
    const doc = YAML.parse(readFileSync(path.join(dir, 'asyncapi.yaml'), 'utf8'));
    assert.equal(doc.asyncapi, '3.0.0');
    const addresses = Object.values(doc.channels).map((c) => (c as { address: string }).address);
    for (const leaf of [
      'availability',
      'info',
      '{camera_id}/decision',
      'audit',
      'health',
      'request/{command}',
      'response/{command}',
    ]) {
      assert.ok(addresses.includes(`{prefix}/{device_id}/${leaf}`), leaf);
    }
    for (const [name, m] of Object.entries(doc.components.messages)) {
      const ref = (m as { payload: { $ref: string } }).payload.$ref;
      assert.ok(existsSync(path.join(dir, ref)), `${name} -> ${ref}`);
      assert.ok(schemas.names.includes(path.basename(ref)), ref);
    }
    assert.deepEqual(doc.components.parameters.command.enum, COMMAND_NAMES);
    const qos = Object.fromEntries(
      Object.entries(doc.operations).map(([k, o]) => [
        k,
        (o as { bindings?: { mqtt?: { qos: number; retain?: boolean } } }).bindings?.mqtt,
      ]),
    );
    assert.deepEqual(qos.sendDecision, { qos: 1, retain: false, messageExpiryInterval: 10 });
    assert.deepEqual(qos.sendAvailability, { qos: 1, retain: true });
    assert.deepEqual(qos.sendHealth, { qos: 0, retain: false });
  });

  test('Home Assistant discovery: one retained config per sensor, tied to availability', () => {
    const msgs = haDiscoveryMessages('homeassistant', new Topics('fghv', 'k1'), info, {
      decisionS: 10,
      healthIntervalS: 30,
    });
    assert.deepEqual(
      msgs.map((m) => m.topic),
      [
        'homeassistant/sensor/k1/front_decision/config',
        'homeassistant/sensor/k1/processed_fps/config',
        'homeassistant/sensor/k1/outbox_pending/config',
      ],
    );
    const first = JSON.parse(msgs[0]?.payload ?? '{}');
    assert.equal(first.state_topic, 'fghv/k1/front/decision');
    assert.equal(first.availability_topic, 'fghv/k1/availability');
    assert.equal(first.unique_id, 'fghv_k1_front_decision');
    // The decision sensor expires with the decision, the health sensors after 3 missed messages.
    assert.equal(first.expire_after, 10);
    for (const m of msgs.slice(1)) assert.equal(JSON.parse(m.payload).expire_after, 90);
  });
});
