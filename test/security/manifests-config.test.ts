/**
 * Findings 4 and 12 of issue 12 on the real modules and CLI, where a running daemon adds
 * nothing: a correctly signed model under an attacker's manifest, decision verification of
 * malformed signatures and duplicate keys, `config check` with unsafe settings (also through
 * the environment) and a configuration file that never ends; and `daemon_started` is not
 * marked replayed on a real broker.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { verifyDecision } from '../../daemon/contract/signing/verify.js';
import { modelSignedBytes, stageModel } from '../../daemon/models/model-install.js';
import { DECIDED_BY, spoofReject } from '../helpers/decision-input.js';
import { spawnKiosk } from '../helpers/kiosk-child.js';
import { testModel } from '../helpers/models.js';
import { collect, type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { simYaml, startSim, stopSim } from '../helpers/mqtt-contract-broker.js';
import { needsSharedData } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

const MODEL = 'models/MiniFASNetV1SE.onnx';
// MiniFASNetV1SE installed from ../shared/data/models by `model fetch` (test/helpers/models.ts).
const MANIFEST = await testModel('minifasnet-v1se');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'fghv-sec-'));

describe('security: signed manifests (finding 4)', { skip: needsSharedData(MODEL) }, () => {
  test('a correctly signed model under an attacker manifest (accept-all, purpose production) is refused', async () => {
    const dir = tmp();
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const model = path.join(path.dirname(MANIFEST), 'MiniFASNetV1SE.onnx');
    const bytes = readFileSync(model);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const genuine = readFileSync(MANIFEST);
    const evil = path.join(dir, 'evil.json');
    const parsed = JSON.parse(genuine.toString());
    writeFileSync(
      evil,
      JSON.stringify({ ...parsed, purpose: 'production', thresholds: { live_min: 0.01, spoof_max: 0.01 } }),
    );
    const stage = (manifestFile: string, signature: string) =>
      stageModel({ stateDir: path.join(dir, 'state'), modelFile: model, manifestFile, publicKey, signature });
    const refused = (e: unknown) => isKioskError(e, 'KIOSK_E_MODEL_SIGNATURE_INVALID');
    // The publisher's signature over the model and its genuine manifest.
    const genuineSig = sign(null, modelSignedBytes(sha, genuine), privateKey).toString('base64');
    // The old form: the model bytes alone.
    const modelOnly = sign(null, bytes, privateKey).toString('base64');
    await assert.rejects(stage(evil, genuineSig), refused);
    await assert.rejects(stage(evil, modelOnly), refused);
    await assert.rejects(stage(evil, `${genuineSig}AAAA`), refused);
    // The genuine pair installs: the refusals are about the manifest.
    const ok = await stage(MANIFEST, genuineSig);
    assert.equal(ok.sha256, sha);
  });
});

describe('security: decision verification is strict (finding 12)', () => {
  test('sig with trailing junk, without padding, and payloads with duplicate keys are refused', () => {
    const signer = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    const now = Date.now();
    const d = signer.sign(
      buildDecisionPayload(spoofReject(), DECIDED_BY, {
        deviceId: 'k',
        seq: { next: () => 1 },
        expiryS: 10,
        now: () => now,
      }),
    );
    const gate = { deviceId: 'k', cameraId: 'front', now: now + 1 };
    assert.equal(verifyDecision(JSON.stringify(d), signer.publicKey, gate).ok, true);
    for (const sig of [`${d.sig}junk`, d.sig.slice(0, -2), `${d.sig}\n`]) {
      assert.deepEqual(verifyDecision(JSON.stringify({ ...d, sig }), signer.publicKey, gate), {
        ok: false,
        reason: 'bad_signature',
      });
    }
    // The signed value first, an attacker's second: JSON.parse keeps the second.
    const dup = JSON.stringify(d).replace('"decision":"reject"', '"decision":"reject","decision":"accept"');
    assert.deepEqual(verifyDecision(dup, signer.publicKey, gate), { ok: false, reason: 'duplicate_key' });
  });
});

describe('security: config check (finding 12)', () => {
  const check = async (yaml: string | null, env: NodeJS.ProcessEnv = {}, file?: string) => {
    const f = file ?? path.join(tmp(), 'config.yaml');
    if (yaml !== null) writeFileSync(f, yaml);
    const k = spawnKiosk(['config', 'check', f], env);
    const { code } = await k.waitExit(60_000);
    return { code, out: k.output() };
  };

  test('an embedded broker beyond loopback is refused, from the file and from FGHV_* overrides', async () => {
    const bad = await check('mqtt:\n  embedded_host: 0.0.0.0\n');
    assert.equal(bad.code, 1);
    assert.match(bad.out, /KIOSK_E_CONFIG_INVALID[\s\S]*embedded_host/);
    const viaEnv = await check('log:\n  level: info\n', { FGHV_MQTT__EMBEDDED_HOST: '0.0.0.0' });
    assert.equal(viaEnv.code, 1, viaEnv.out);
    assert.match(viaEnv.out, /embedded_host/);
    const external = await check('mqtt:\n  url: mqtts://broker.example:8883\n  embedded_host: 0.0.0.0\n');
    assert.equal(external.code, 0, external.out);
  });

  test('a short status token is refused by config check, as it is at start', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'token'), 'twelve-chars\n');
    const r = await check(`status:\n  host: 0.0.0.0\n  token_file: ${path.join(dir, 'token')}\n`);
    assert.equal(r.code, 1);
    assert.match(r.out, /KIOSK_E_STATUS_AUTH_CONFIG/);
  });

  test('a config file that never ends (/dev/zero) or is too large is refused unread', async () => {
    const zero = await check(null, {}, '/dev/zero');
    assert.equal(zero.code, 1);
    assert.match(zero.out, /regular file of at most/);
    const big = path.join(tmp(), 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(2 * 2 ** 20)}\n`);
    const large = await check(null, {}, big);
    assert.equal(large.code, 1);
    assert.match(large.out, /regular file of at most/);
  });
});

describe('security: audit replay marks (finding 12)', { skip: needsMosquitto(), timeout: 60_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('daemon_started of this run is not marked replayed', async (t) => {
    const dir = tempDir('sec-started');
    const audit = await collect(broker.url, ['fghv/k-start/audit']);
    t.after(() => audit.close());
    const sim = startSim(
      dir,
      simYaml({ deviceId: 'k-start', stateDir: `${dir}/state`, url: broker.url }),
      500,
    );
    t.after(() => stopSim(sim));
    const started = await audit.waitFor((m) => m.payload.includes('"daemon_started"'), 20_000);
    assert.equal(JSON.parse(started.payload).replayed, undefined);
  });
});
