/**
 * One decision per presence (issue 15), end to end: the real daemon against mosquitto, a
 * person standing still for 40 s in front of the camera (a frame of the sample video, played
 * as a live 15 fps stream by ffmpeg), then request/verify over MQTT.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { ContractSchemas } from '../../daemon/contract/contract-schema.js';
import { fleetKey, signedBody } from '../helpers/attack-kit.js';
import { type KioskChild, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import {
  type Collector,
  collect,
  type Mosquitto,
  needsMosquitto,
  startMosquitto,
} from '../helpers/mosquitto.js';
import { repoRoot } from '../helpers/paths.js';

const schemas = new ContractSchemas(path.join(repoRoot, 'contract/schemas'));

const ffmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
const DEVICE = 'presence-kiosk';
/** A re-verification needs a fleet signature (issue 24, finding 2). */
const fleetSigner = fleetKey();

describe('one decision per presence, and request/verify', {
  skip: needsMosquitto() || (ffmpeg ? false : 'needs ffmpeg on PATH'),
  timeout: 240_000,
}, () => {
  let broker: Mosquitto;
  let sub: Collector;
  let kiosk: KioskChild;
  let fleet: MqttClient;

  before(async () => {
    broker = await startMosquitto();
    sub = await collect(broker.url, [`fghv/${DEVICE}/#`]);
    const still = path.join(mkdtempSync(path.join(tmpdir(), 'fghv-presence-')), 'still.png');
    const png = spawnSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-ss',
      '1',
      '-i',
      path.join(repoRoot, 'media/demo-kiosk.mp4'),
      '-frames:v',
      '1',
      still,
    ]);
    assert.equal(png.status, 0, png.stderr.toString());
    const { file } = writeKioskConfig({
      deviceId: DEVICE,
      brokerUrl: broker.url,
      extra: {
        cameras: [
          {
            id: 'front',
            kind: 'ffmpeg',
            // One frame of the sample video (Hopper, upright), as a live camera sees a person standing still.
            source: `-re -loop 1 -framerate 15 -i ${still}`,
          },
        ],
        liveness: { manifest: path.join(repoRoot, 'models/fghv-demo/manifest.json'), providers: ['cpu'] },
        commands: { fleet_public_keys: [fleetSigner.publicKey] },
      },
    });
    kiosk = spawnKiosk(['run', '--config', file]);
    fleet = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    await fleet.subscribeAsync(`fghv/${DEVICE}/response/#`);
  });

  after(async () => {
    kiosk?.kill();
    await fleet?.endAsync(true);
    await sub?.close();
    await broker?.stop();
  });

  const decisions = () =>
    sub.messages.filter((m) => m.topic === `fghv/${DEVICE}/front/decision`).map((m) => JSON.parse(m.payload));

  it('a person standing still for 40 s gets one decision', async () => {
    const first = await sub.waitFor((m) => m.topic === `fghv/${DEVICE}/front/decision`, 90_000);
    const t0 = Date.now();
    while (Date.now() - t0 < 40_000) {
      assert.equal(kiosk.child.exitCode, null, kiosk.output().slice(-2000));
      await new Promise((r) => setTimeout(r, 500));
    }
    const all = decisions();
    assert.deepEqual(
      all.map((d) => [d.track_id, d.decision, d.reason]),
      [[JSON.parse(first.payload).track_id, 'accept', 'live_verified']],
      'one accept in 40 s (the old behaviour: one per cooldown_ms, about 13)',
    );
  });

  it('request/verify decides the person in view again and answers with that decision', async () => {
    const before = decisions().length;
    const reply = new Promise<Record<string, unknown>>((resolve) =>
      fleet.on('message', (topic, payload) => {
        if (topic.endsWith('/response/verify')) resolve(JSON.parse(payload.toString()));
      }),
    );
    await fleet.publishAsync(
      `fghv/${DEVICE}/request/verify`,
      JSON.stringify(
        signedBody(fleetSigner, DEVICE, 'verify', {
          transaction: 't1',
          camera_id: 'front',
          timeout_ms: 10_000,
        }),
      ),
      { qos: 1 },
    );
    const body = (await reply) as {
      status: string;
      transaction: string;
      data: { decision: Record<string, unknown> };
    };
    assert.equal(body.status, 'ok', JSON.stringify(body));
    assert.equal(body.transaction, 't1');
    assert.equal(body.data.decision.decision, 'accept');
    assert.equal(body.data.decision.camera_id, 'front');
    // The answer is the decision published on the decision topic (same id), a fresh session.
    await sub.waitFor(
      (m) =>
        m.topic === `fghv/${DEVICE}/front/decision` && JSON.parse(m.payload).id === body.data.decision.id,
      10_000,
    );
    assert.equal(decisions().length, before + 1);
    assert.ok(
      (body.data.decision.frames as { seen: number }).seen >= 5,
      'a full window of frames, as any session',
    );
  });

  it('guidance: on change, retained, valid by the contract; verifying then decided', () => {
    const guidance = sub.messages.filter((m) => m.topic === `fghv/${DEVICE}/front/guidance`);
    assert.ok(guidance.length >= 2, `guidance messages: ${guidance.length}`);
    const states = guidance.map((m) => JSON.parse(m.payload).state);
    for (const m of guidance)
      assert.deepEqual(schemas.validate('guidance.json', JSON.parse(m.payload)), [], m.payload);
    for (let i = 1; i < states.length; i++) assert.notEqual(states[i], states[i - 1], 'sent on change only');
    assert.ok(
      states.indexOf('verifying') >= 0 && states.indexOf('decided') > states.indexOf('verifying'),
      states.join(','),
    );
    // 40 s of one person standing still: a handful of messages, not one per frame.
    assert.ok(guidance.length <= 12, `${guidance.length} guidance messages: ${states.join(',')}`);
  });

  it('a guidance subscriber that connects late gets the current state (retained)', async () => {
    const late = await collect(broker.url, [`fghv/${DEVICE}/front/guidance`]);
    try {
      const m = await late.waitFor(() => true, 5000);
      assert.equal(m.retain, true);
      assert.ok(['decided', 'verifying'].includes(JSON.parse(m.payload).state), m.payload);
    } finally {
      await late.close();
    }
  });
});
