/**
 * The inference worker's lanes: the detector and the liveness model live in separate worker
 * threads, compute the same as in one, and a misuse fails with a stable code instead of hanging.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../../core/errors.js';
import {
  autoIntraOpThreads,
  DETECTOR_LANE,
  InferenceWorker,
  LIVENESS_LANE,
  type OrtSession,
  type WireTensor,
} from '../../daemon/inference/inference-worker.js';
import { repoRoot } from '../helpers/paths.js';

const model = path.join(repoRoot, 'models/fghv-demo/fghv-demo.onnx');

function input(session: OrtSession, seed: number): WireTensor {
  const dims = (session.inputs[0]?.dims ?? []).map((d) => (typeof d === 'number' ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    type: 'float32',
    dims,
    data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed)),
  };
}

describe('autoIntraOpThreads', () => {
  it('shares the cores between the two lanes when the config says 0, at least one each', () => {
    assert.equal(autoIntraOpThreads(0, 1), 1);
    assert.equal(autoIntraOpThreads(0, 2), 1);
    assert.equal(autoIntraOpThreads(0, 6), 3);
    assert.equal(autoIntraOpThreads(0, 8), 4);
  });
  it('uses an explicit count as given', () => {
    assert.equal(autoIntraOpThreads(3, 2), 3);
    assert.equal(autoIntraOpThreads(1, 16), 1);
  });
});

describe('inference lanes', () => {
  let worker: InferenceWorker;
  before(() => {
    worker = InferenceWorker.start();
  });
  after(async () => {
    await worker.close();
  });

  it('computes the same in either lane, also with both running at once', async () => {
    const a = await worker.load(model, { lane: DETECTOR_LANE, intraOpThreads: 1 });
    const b = await worker.load(model, { lane: LIVENESS_LANE, intraOpThreads: 1 });
    const name = a.inputs[0]?.name as string;
    const [ra, rb] = await Promise.all([a.run({ [name]: input(a, 1) }), b.run({ [name]: input(b, 1) })]);
    const other = await b.run({ [name]: input(b, 2) });
    for (const k of Object.keys(ra.outputs)) {
      assert.deepEqual(rb.outputs[k]?.data, ra.outputs[k]?.data, k);
    }
    // ...and the outputs depend on the input (the comparison above is not vacuous).
    assert.ok(Object.keys(ra.outputs).some((k) => other.outputs[k]?.data[0] !== ra.outputs[k]?.data[0]));
    await a.release();
    await b.release();
  });

  it('refuses a lane that does not exist', async () => {
    await assert.rejects(worker.load(model, { lane: 7 }), { code: ErrorCodes.INTERNAL });
  });

  it('refuses a feed whose buffer was already sent, instead of waiting forever', {
    timeout: 30_000,
  }, async () => {
    const s = await worker.load(model, { lane: LIVENESS_LANE, intraOpThreads: 1 });
    const name = s.inputs[0]?.name as string;
    const feed = input(s, 3);
    await s.run({ [name]: feed });
    await assert.rejects(s.run({ [name]: feed }), { code: ErrorCodes.INFERENCE_FAILED });
    // The lane still works afterwards.
    const ok = await s.run({ [name]: input(s, 3) });
    assert.ok(Object.keys(ok.outputs).length > 0);
    await s.release();
  });

  it('refuses loads after close with the worker-died code', async () => {
    const w = InferenceWorker.start();
    await w.load(model, { lane: LIVENESS_LANE, intraOpThreads: 1 });
    await w.close();
    await assert.rejects(w.load(model), { code: ErrorCodes.WORKER_DIED });
  });
});
