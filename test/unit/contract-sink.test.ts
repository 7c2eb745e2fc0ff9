/**
 * The contract sink (daemon/contract/contract-sink.ts), the one way out of the daemon: a
 * pipeline decision becomes a signed payload that is in the audit store and handed to the link
 * before any observer hears of it; guidance and info leave through the same object. The link
 * is never started (no broker): what the sink hands it is recorded.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { silentLogger } from '../../core/log.js';
import type { CommandTarget } from '../../daemon/contract/commands/command-server.js';
import { ContractLink, linkOptionsFromConfig } from '../../daemon/contract/contract-link.js';
import { ContractSink } from '../../daemon/contract/contract-sink.js';
import { SeqCounter } from '../../daemon/contract/seq-counter.js';
import { verifyDecision } from '../../daemon/contract/signing/verify.js';
import type { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import type { OutgoingMessage } from '../../daemon/mqtt/mqtt-link.js';
import { sessionDecision } from '../helpers/decision-input.js';
import { tempDir } from '../helpers/temp.js';

/** Only what the sink reads of a liveness model: its manifest info, provider and thresholds. */
const liveness = {
  info: { name: 'stub', version: '2', sha256: 'b'.repeat(64), family: 'softmax', purpose: 'demo' },
  provider: 'cpu',
  thresholds: { overrides: () => ({}), floor: { p_live_min: 0.5 } },
} as unknown as LivenessModel;

test('a decision is durable and handed to the link before observers hear of it; guidance and info leave the same way', async () => {
  const dir = tempDir('sink');
  const config = configSchema.parse({
    device: { id: 'k-sink', state_dir: path.join(dir, 'state') },
    mqtt: { url: 'mqtt://127.0.0.1:1' },
    commands: { enabled: false },
  });
  let model: LivenessModel | null = null;
  const sink = new ContractSink({
    config,
    deviceId: 'k-sink',
    version: 't',
    log: silentLogger(),
    models: () => ({ liveness: model, detector: null }),
  });
  const observed: { seq: number; pending: number; handed: number }[] = [];
  sink.events.on('decision', (p) =>
    observed.push({ seq: p.seq, pending: sink.store.counters().pending, handed: handed.length }),
  );
  const handed: OutgoingMessage[] = [];

  // Not connected, or no model: nothing is numbered, recorded or published.
  assert.equal(sink.decision(sessionDecision()), null);
  model = liveness;
  assert.equal(sink.decision(sessionDecision()), null);
  assert.equal(sink.store.counters().pending, 0);
  assert.equal(sink.info().decision_public_key, sink.signer.publicKey);

  const link = new ContractLink(linkOptionsFromConfig(config.mqtt, 'k-sink', 'mqtt://127.0.0.1:1'));
  const publish = link.publish.bind(link);
  link.publish = (m: OutgoingMessage) => {
    handed.push(m);
    return publish(m);
  };
  try {
    sink.connect(link, new SeqCounter(config.device.state_dir), {} as CommandTarget);
    const p = sink.decision(sessionDecision({ cameraId: 'front', trackId: 5 }));
    assert.ok(p);
    assert.deepEqual([p.camera_id, p.track_id, p.decision, p.device_id], ['front', 5, 'accept', 'k-sink']);
    assert.deepEqual(p.model, { name: 'stub', version: '2', sha256: 'b'.repeat(64) });
    assert.equal(p.execution_provider, 'cpu');
    const verdict = verifyDecision(JSON.stringify(p), sink.signer.publicKey, {
      deviceId: 'k-sink',
      cameraId: 'front',
      now: Date.now(),
    });
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    const live = handed.find((m) => m.topic === 'fghv/k-sink/front/decision');
    assert.ok(live, 'the live copy was handed to the link');
    assert.equal(JSON.parse(String(live.payload)).seq, p.seq);
    // The observer ran after the audit row was written and the live copy handed over.
    assert.equal(observed.length, 1);
    assert.equal(observed[0]?.seq, p.seq);
    assert.ok((observed[0]?.pending ?? 0) >= 1, 'the decision was in the audit store');
    assert.ok((observed[0]?.handed ?? 0) >= 1);

    const since = performance.now() - 1000;
    sink.guidance('front', 'verifying', 1, { presenceSinceMono: since });
    const g = handed.find((m) => m.topic === 'fghv/k-sink/front/guidance');
    assert.ok(g, 'guidance was handed to the link');
    assert.deepEqual([g.qos, g.retain], [0, true]);
    const body = JSON.parse(String(g.payload));
    assert.deepEqual([body.state, body.faces, body.camera_id], ['verifying', 1, 'front']);
    const ago = Date.parse(body.ts) - Date.parse(body.presence_since);
    assert.ok(ago >= 990 && ago <= 1100, `presence began about 1 s before: ${ago} ms`);
    assert.equal('held_since' in body, false);

    const info = sink.info();
    assert.equal(info.device_id, 'k-sink');
    assert.equal(info.model?.name, 'stub');
    assert.deepEqual(info.model_thresholds, { p_live_min: 0.5 });
  } finally {
    await link.close();
    await sink.close();
  }
});
