/**
 * The self-test before a model becomes current (daemon/models/model-install.ts selfTestModel),
 * with stub models built here (test/helpers/stub-model.ts): a model whose live probability is
 * NaN, negative or above 1 is refused with KIOSK_E_MODEL_SELF_TEST_FAILED, its staged files are
 * removed and the model installed before stays current. Needs no shared data.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { isKioskError } from '../../core/errors.js';
import { installModelOffline } from '../../daemon/cli/model.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { modelsDir, readInstalled } from '../../daemon/models/model-install.js';
import { prepareModel } from '../../daemon/models/model-update.js';
import { writeStubModel } from '../helpers/stub-model.js';
import { tempDir } from '../helpers/temp.js';

describe('model self-test before install', () => {
  let dir: string;
  let config: ReturnType<typeof configSchema.parse>;
  let worker: InferenceWorker;
  before(() => {
    dir = tempDir('selftest');
    config = configSchema.parse({
      device: { state_dir: path.join(dir, 'state') },
      liveness: { providers: ['cpu'], intra_op_threads: 1 },
    });
    worker = InferenceWorker.start();
  });
  after(async () => {
    await worker.close();
  });

  it('a sane stub passes the self-test and scores what it was built to score', async () => {
    const good = writeStubModel(dir, 'good', [0.3, 0.7]);
    const { model, staged } = await prepareModel(worker, config, {
      modelFile: good.file,
      manifestFile: good.manifest,
    });
    try {
      assert.equal(staged.sha256, good.sha256);
      assert.equal(model.info.name, 'good');
    } finally {
      await model.close();
    }
  });

  it('live probabilities of exactly 0 and exactly 1 are in range', async () => {
    for (const [name, scores] of [
      ['zero', [1, 0]],
      ['one', [0, 1]],
    ] as const) {
      const m = writeStubModel(dir, name, [...scores]);
      const { model } = await prepareModel(worker, config, { modelFile: m.file, manifestFile: m.manifest });
      await model.close();
    }
  });

  it('NaN, negative and >1 live probabilities are refused; the installed model stays current', async () => {
    const good = writeStubModel(dir, 'current', [0.4, 0.6]);
    const installed = await installModelOffline(config, good.file, good.manifest);
    assert.equal(installed.current?.sha256, good.sha256);
    const stateDir = config.device.state_dir;
    const dirsBefore = readdirSync(modelsDir(stateDir)).sort();

    for (const [name, scores, shown] of [
      ['nan', [0.5, Number.NaN], /p_live = NaN/],
      ['above-one', [-0.5, 1.5], /p_live = 1\.5 is out of range/],
      ['negative', [1.25, -0.25], /p_live = -0\.25 is out of range/],
    ] as const) {
      const bad = writeStubModel(dir, name, [...scores]);
      await assert.rejects(installModelOffline(config, bad.file, bad.manifest), (e) => {
        assert.ok(isKioskError(e, 'KIOSK_E_MODEL_SELF_TEST_FAILED'), `${name}: ${String(e)}`);
        assert.match((e as Error).message, shown);
        assert.deepEqual(e.details, { input: 0, score: 'p_live', value: Number(scores[1].toFixed(2)) });
        return true;
      });
      const after = readInstalled(stateDir);
      assert.equal(after.current?.sha256, good.sha256, `${name}: the old model is still current`);
      assert.ok(existsSync(after.current?.manifest ?? ''));
      assert.equal(after.previous, null, `${name}: nothing moved to previous`);
      assert.deepEqual(readdirSync(modelsDir(stateDir)).sort(), dirsBefore, `${name}: staged files removed`);
    }
  });
});
