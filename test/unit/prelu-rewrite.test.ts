/**
 * The CPU provider's PRelu rewrite (daemon/inference/prelu-rewrite.ts) computes exactly what
 * PRelu computes, on a model built here and on the real MiniFASNet models, and leaves models it
 * cannot or need not rewrite alone.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { InferenceWorker, LIVENESS_LANE, type WireTensor } from '../../daemon/inference/inference-worker.js';
import { rewritePRelu } from '../../daemon/inference/prelu-rewrite.js';
import { needsSharedData, shared } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const shape = (dims: number[]) => ({
  tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } },
});

/** x [1,3,4,4] -> Conv 1x1 (identity weights) -> PRelu(slope [3,1,1], one slope negative) -> y. */
function preluModel(opset: number): Uint8Array {
  const eye = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'fghv-kiosk test',
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'prelu',
      node: [
        { opType: 'Conv', input: ['x', 'w'], output: ['c'], name: 'conv' },
        { opType: 'PRelu', input: ['c', 'slope'], output: ['y'], name: 'prelu' },
      ],
      initializer: [
        { name: 'w', dataType: FLOAT, dims: [3, 3, 1, 1], floatData: eye },
        { name: 'slope', dataType: FLOAT, dims: [3, 1, 1], floatData: [0.25, -0.5, 2] },
      ],
      input: [{ name: 'x', type: shape([1, 3, 4, 4]) }],
      output: [{ name: 'y', type: shape([1, 3, 4, 4]) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

const x = (): WireTensor => ({
  type: 'float32',
  dims: [1, 3, 4, 4],
  data: Float32Array.from({ length: 48 }, (_, i) => (i % 7) - 3.5 + i * 0.01),
});

describe('PRelu rewrite', () => {
  let worker: InferenceWorker;
  let dir: string;
  before(() => {
    worker = InferenceWorker.start();
    dir = tempDir('prelu-');
  });
  after(async () => {
    await worker.close();
  });

  it('replaces every PRelu and computes exactly what PRelu computes (negative slopes too)', async () => {
    const file = path.join(dir, 'prelu.onnx');
    writeFileSync(file, preluModel(13));
    const r = rewritePRelu(preluModel(13));
    assert.equal(r?.rewritten, 1);
    const plain = await worker.load(file, { rewritePRelu: false, intraOpThreads: 1 });
    const fast = await worker.load(file, { intraOpThreads: 1 });
    assert.equal(plain.rewrites, 0);
    assert.equal(fast.rewrites, 1);
    const a = (await plain.run({ x: x() })).outputs.y?.data as Float32Array;
    const b = (await fast.run({ x: x() })).outputs.y?.data as Float32Array;
    assert.deepEqual(b, a);
    // PRelu by hand: the model really applies the slopes (channel 1's is negative).
    const input = x().data as Float32Array;
    const slopes = [0.25, -0.5, 2];
    for (let i = 0; i < 48; i++) {
      const v = input[i] as number;
      assert.equal(a[i], Math.fround(v > 0 ? v : v * (slopes[Math.floor(i / 16)] as number)), `element ${i}`);
    }
  });

  it('leaves a model alone when it has no PRelu, its opset is older than 8, or it is not ONNX', () => {
    const noPrelu = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 13 }],
        graph: { name: 'relu', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }] },
      }),
    ).finish();
    assert.equal(rewritePRelu(noPrelu), null);
    assert.equal(rewritePRelu(preluModel(7)), null);
    assert.equal(rewritePRelu(new TextEncoder().encode('not a model at all')), null);
    assert.equal(rewritePRelu(new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])), null); // truncated graph
  });

  it('keeps every other byte of the model: decoding the rewrite gives back the same weights and metadata', () => {
    const before = onnx.ModelProto.decode(preluModel(13));
    const after = onnx.ModelProto.decode((rewritePRelu(preluModel(13)) as { bytes: Uint8Array }).bytes);
    assert.equal(after.producerName, before.producerName);
    assert.deepEqual(after.graph?.initializer?.slice(0, 2), before.graph?.initializer);
    assert.deepEqual(
      after.graph?.node?.map((n) => n.opType),
      ['Conv', 'Relu', 'Min', 'Mul', 'Add'],
    );
  });

  for (const name of ['MiniFASNetV2', 'MiniFASNetV1SE']) {
    const file = shared(`models/${name}.onnx`);
    it(`${name}: 33 PRelu rewritten, identical outputs on varied inputs`, {
      skip: needsSharedData(`models/${name}.onnx`),
    }, async () => {
      const plain = await worker.load(file, { rewritePRelu: false, intraOpThreads: 1, lane: LIVENESS_LANE });
      const fast = await worker.load(file, { intraOpThreads: 1, lane: LIVENESS_LANE });
      assert.equal(fast.rewrites, 33);
      const outs = new Set<string>();
      for (let k = 0; k < 5; k++) {
        const make = (): WireTensor => ({
          type: 'float32',
          dims: [1, 3, 80, 80],
          data: Float32Array.from({ length: 19200 }, (_, i) => (Math.sin(i * 0.01 * (k + 1)) + 1) * 127.5),
        });
        const a = (await plain.run({ input: make() })).outputs;
        const b = (await fast.run({ input: make() })).outputs;
        for (const o of Object.keys(a)) assert.deepEqual(b[o]?.data, a[o]?.data, `${name} ${o}`);
        outs.add(Array.from((Object.values(a)[0]?.data as Float32Array | undefined) ?? []).join(','));
      }
      assert.equal(outs.size, 5, 'the outputs vary with the input');
    });
  }
});
