/**
 * Model installation and live model updates with the MiniFASNet models (installed from the shared data): sha256 and
 * signature checks, warm-up and self-test before the switch, rollback on failure, previous
 * model kept, frames keep being processed during the switch.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { isKioskError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { Daemon } from '../../daemon/daemon.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { modelSignedBytes, readInstalled } from '../../daemon/models/model-install.js';
import { prepareModel } from '../../daemon/models/model-update.js';
import { MINIFASNET_MANIFEST, modelFile, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import { testModel } from '../helpers/models.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

// Installed from ../shared/data/models by `model fetch` (test/helpers/models.ts).
const V1SE_MANIFEST = await testModel('minifasnet-v1se');
const V1SE = path.join(path.dirname(V1SE_MANIFEST), 'MiniFASNetV1SE.onnx');
const V2 = modelFile();
const skip = needsSharedData('models/MiniFASNetV1SE.onnx', 'models/MiniFASNetV2.onnx');

/** A manifest whose sha256 matches a file of garbage: passes verification, fails to load. */
function corruptModel(dir: string): { file: string; manifest: string } {
  const file = path.join(dir, 'garbage.onnx');
  writeFileSync(file, Buffer.from('this is not an onnx model'));
  const m = JSON.parse(readFileSync(V1SE_MANIFEST, 'utf8'));
  m.file = 'garbage.onnx';
  m.sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  const manifest = path.join(dir, 'garbage.manifest.json');
  writeFileSync(manifest, JSON.stringify(m));
  return { file, manifest };
}

describe('fghv-kiosk model install', { skip }, () => {
  it('installs a verified model as current', async () => {
    const { file, stateDir } = writeKioskConfig();
    const kiosk = spawnKiosk(['model', 'install', V1SE, V1SE_MANIFEST, '--config', file]);
    const { code } = await kiosk.waitExit(60_000);
    assert.equal(code, 0, kiosk.output());
    const installed = readInstalled(stateDir);
    assert.equal(installed.current?.name, 'minifasnet-v1se');
    assert.ok(existsSync(installed.current?.manifest ?? ''));
    assert.deepEqual(
      readFileSync(path.join(path.dirname(installed.current?.manifest ?? ''), 'model.onnx')),
      readFileSync(V1SE),
    );
  });

  it('refuses a model whose sha256 differs from its manifest, installing nothing', async () => {
    const { file, stateDir } = writeKioskConfig();
    const kiosk = spawnKiosk(['model', 'install', V2, V1SE_MANIFEST, '--config', file]);
    const { code } = await kiosk.waitExit(60_000);
    assert.equal(code, 1);
    assert.match(kiosk.output(), /KIOSK_E_MODEL_SHA_MISMATCH/);
    assert.equal(readInstalled(stateDir).current, null);
  });

  it('checks the signature when a public key is configured', async () => {
    const dir = tempDir('model');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const keyFile = path.join(dir, 'fleet.pub');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const config = configSchema.parse({
      device: { state_dir: path.join(dir, 'state') },
      liveness: { providers: ['cpu'] },
      model_update: { public_key_file: keyFile },
    });
    const worker = InferenceWorker.start();
    try {
      const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
      const signOver = (model: string, manifest: string) =>
        sign(null, modelSignedBytes(sha(model), readFileSync(manifest)), privateKey).toString('base64');
      const good = signOver(V1SE, V1SE_MANIFEST);
      const bad = signOver(V2, V1SE_MANIFEST);
      // The old form (model bytes only) no longer counts: it left the manifest unsigned.
      const modelOnly = sign(null, readFileSync(V1SE), privateKey).toString('base64');
      await assert.rejects(
        prepareModel(worker, config, { modelFile: V1SE, manifestFile: V1SE_MANIFEST, signature: modelOnly }),
        (e) => isKioskError(e, 'KIOSK_E_MODEL_SIGNATURE_INVALID'),
      );
      await assert.rejects(
        prepareModel(worker, config, { modelFile: V1SE, manifestFile: V1SE_MANIFEST }),
        (e) => isKioskError(e, 'KIOSK_E_MODEL_SIGNATURE_INVALID'),
      );
      await assert.rejects(
        prepareModel(worker, config, { modelFile: V1SE, manifestFile: V1SE_MANIFEST, signature: bad }),
        (e) => isKioskError(e, 'KIOSK_E_MODEL_SIGNATURE_INVALID'),
      );
      const ok = await prepareModel(worker, config, {
        modelFile: V1SE,
        manifestFile: V1SE_MANIFEST,
        signature: good,
      });
      assert.equal(ok.model.info.name, 'minifasnet-v1se');
      await ok.model.close();
    } finally {
      await worker.close();
    }
  });
});

describe('Daemon.updateModel while running', { skip }, () => {
  it('switches without stopping the pipeline, rolls back a broken model, keeps the previous one', async () => {
    const dir = tempDir('model');
    const config = configSchema.parse({
      device: { id: 'update-kiosk', state_dir: path.join(dir, 'state') },
      mqtt: { embedded_port: 0, health_interval_s: 60 },
      cameras: [
        {
          id: 'front',
          kind: 'file',
          source: path.join(repoRoot, 'media/demo-kiosk.mp4'),
          loop: true,
          realtime: false,
        },
      ],
      liveness: { manifest: MINIFASNET_MANIFEST, providers: ['cpu'], intra_op_threads: 1 },
      status: { enabled: false },
    });
    const daemon = new Daemon({ config, log: silentLogger(), version: 'test' });
    const processed = () => daemon.figures().processed;
    try {
      await daemon.start();
      const t0 = Date.now();
      while (processed() < 5) {
        assert.ok(Date.now() - t0 < 30_000, 'no frames processed');
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = processed();
      const info = await daemon.updateModel(V1SE, V1SE_MANIFEST);
      const during = processed() - before;
      assert.equal(info.name, 'minifasnet-v1se');
      assert.equal(daemon.info.model?.name, 'minifasnet-v1se');
      assert.ok(during > 0, 'the pipeline processed no frame while the new model was prepared');
      const afterSwitch = processed();
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(processed() > afterSwitch, 'the pipeline stopped after the switch');

      // A second update to a model that cannot load: the running model stays.
      const bad = corruptModel(dir);
      await assert.rejects(daemon.updateModel(bad.file, bad.manifest), (e) => isKioskError(e));
      assert.equal(daemon.info.model?.name, 'minifasnet-v1se');
      const atFail = processed();
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(processed() > atFail, 'the pipeline stopped after a failed update');

      // And back to V2: V1SE becomes the previous model, its files kept.
      const v2Manifest = MINIFASNET_MANIFEST;
      await daemon.updateModel(V2, v2Manifest);
      const installed = readInstalled(config.device.state_dir);
      assert.equal(installed.current?.name, 'minifasnet-v2');
      assert.equal(installed.previous?.name, 'minifasnet-v1se');
      assert.ok(existsSync(installed.previous?.manifest ?? ''));
    } finally {
      await daemon.stop();
    }
  });
});
