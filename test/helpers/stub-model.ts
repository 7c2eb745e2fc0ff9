/**
 * A tiny softmax-family liveness model built at test time (no file from anywhere else): input
 * `input` [1, 3, 8, 8], output `output` [1, 2] equal to the given class scores whatever the
 * image (0 * mean(input) + scores). With `apply_softmax: false` its p_live is `scores[1]` as
 * given, so a test can hand the daemon NaN, a negative or a >1 probability, or a sane one.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const tensorType = (dims: number[]) => ({
  tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } },
});

/** The ONNX bytes: ReduceMean(input) -> Mul 0 -> Add scores. */
export function stubModelBytes(scores: [number, number]): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'fghv-kiosk test stub',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'stub',
      node: [
        {
          opType: 'ReduceMean',
          input: ['input'],
          output: ['mean'],
          name: 'mean',
          attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
        },
        { opType: 'Mul', input: ['mean', 'zero'], output: ['nothing'], name: 'mul' },
        { opType: 'Add', input: ['nothing', 'scores'], output: ['output'], name: 'add' },
      ],
      initializer: [
        { name: 'zero', dataType: FLOAT, dims: [], floatData: [0] },
        { name: 'scores', dataType: FLOAT, dims: [1, 2], floatData: scores },
      ],
      input: [{ name: 'input', type: tensorType([1, 3, 8, 8]) }],
      output: [{ name: 'output', type: tensorType([1, 2]) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Writes `<name>.onnx` and `<name>.manifest.json` (sha256 filled in) into `dir`. */
export function writeStubModel(
  dir: string,
  name: string,
  scores: [number, number],
): { file: string; manifest: string; sha256: string } {
  const bytes = stubModelBytes(scores);
  const file = path.join(dir, `${name}.onnx`);
  writeFileSync(file, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const manifest = path.join(dir, `${name}.manifest.json`);
  writeFileSync(
    manifest,
    JSON.stringify({
      schema: 1,
      name,
      version: '0.0.1',
      family: 'softmax',
      purpose: 'untrained',
      description: 'test stub: constant class scores, built by test/helpers/stub-model.ts',
      file: `${name}.onnx`,
      sha256,
      input: {
        name: 'input',
        shape: [1, 3, 8, 8],
        layout: 'NCHW',
        dtype: 'float32',
        color: 'BGR',
        normalize: { mean: [0, 0, 0], std: [255, 255, 255] },
      },
      crop: { method: 'scaled_box', size: [8, 8], scale: 1.0, interpolation: 'linear' },
      outputs: { name: 'output', classes: 2, live_index: 1, apply_softmax: false },
      thresholds: { live_min: 0.8, spoof_max: 0.5 },
    }),
  );
  return { file, manifest, sha256 };
}
