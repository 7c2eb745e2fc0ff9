/**
 * ONNX Runtime session options that come from the config: intra-op spinning reaches every
 * session (liveness and detector) and does not change what the networks compute.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { envOverrides, validateConfig } from '../../config/load.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { livenessOptions } from '../../daemon/liveness/liveness-model.js';
import { repoRoot } from '../helpers/paths.js';

describe('liveness.intra_op_spinning', () => {
  it('is off by default and can be turned on from the file or the environment', () => {
    assert.equal(livenessOptions(validateConfig({}, 't')).allowSpinning, false);
    assert.equal(
      livenessOptions(validateConfig({ liveness: { intra_op_spinning: true } }, 't')).allowSpinning,
      true,
    );
    const { overrides } = envOverrides({ FGHV_LIVENESS__INTRA_OP_SPINNING: 'true' });
    assert.equal(livenessOptions(validateConfig(overrides, 'env')).allowSpinning, true);
    assert.throws(() => validateConfig({ liveness: { intra_op_spinning: 'no' } }, 't'), /intra_op_spinning/);
  });

  describe('on a real session', () => {
    let worker: InferenceWorker;
    before(() => {
      worker = InferenceWorker.start();
    });
    after(async () => {
      await worker.close();
    });

    it('spinning off loads and computes exactly what spinning on computes', async () => {
      const model = path.join(repoRoot, 'models/fghv-demo/fghv-demo.onnx');
      const on = await worker.load(model, { providers: ['cpu'], intraOpThreads: 2, allowSpinning: true });
      const off = await worker.load(model, { providers: ['cpu'], intraOpThreads: 2, allowSpinning: false });
      const dims = (on.inputs[0]?.dims ?? []).map((d) => (typeof d === 'number' ? d : 1));
      const n = dims.reduce((a, b) => a * b, 1);
      const make = () => ({
        type: 'float32',
        dims,
        data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)),
      });
      const name = on.inputs[0]?.name as string;
      const a = await on.run({ [name]: make() });
      const b = await off.run({ [name]: make() });
      assert.deepEqual(Object.keys(b.outputs).sort(), Object.keys(a.outputs).sort());
      for (const k of Object.keys(a.outputs)) {
        assert.deepEqual(b.outputs[k]?.data, a.outputs[k]?.data, k);
      }
      await on.release();
      await off.release();
    });
  });
});
