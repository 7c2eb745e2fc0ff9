/**
 * The exported FGHV graph (backbone + unrolled test-time verification), run by onnxruntime-node
 * through the inference worker, matches the PyTorch autograd reference (models/fghv reference.py)
 * and gives bit-identical outputs for the same input.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { f32, InferenceWorker, type OrtSession } from '../../daemon/inference/inference-worker.js';
import { repoRoot } from '../helpers/paths.js';

const OUTPUTS = ['p_real', 'var', 'delta_kl', 'kl_real', 'kl_attack'] as const;
type OutputName = (typeof OUTPUTS)[number];

interface FormulaInput {
  a: number;
  b: number;
  m: number;
}

interface ReferenceVectors {
  onnx: string;
  sha256: string;
  size: number;
  tolerance: { abs: Record<string, number>; rel: Record<string, number> };
  cases: ({ input: FormulaInput } & Record<OutputName, number>)[];
}

/** v_i = ((i*a + b) mod m) / (m/2) - 1, as models/fghv/fghv/vectors.py computes it. */
function formulaInput(spec: FormulaInput, size: number): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let i = 0; i < out.length; i++) out[i] = ((i * spec.a + spec.b) % spec.m) / (spec.m / 2) - 1;
  return out;
}

const vectorFiles = ['fghv-tiny.json', 'fghv-demo.json'];
let worker: InferenceWorker;

before(() => {
  worker = InferenceWorker.start();
});
after(async () => {
  await worker.close();
});

async function runOnce(
  session: OrtSession,
  spec: FormulaInput,
  size: number,
): Promise<Record<OutputName, Float32Array>> {
  const { outputs } = await session.run({ input: f32(formulaInput(spec, size), [1, 3, size, size]) });
  const res = {} as Record<OutputName, Float32Array>;
  for (const name of OUTPUTS) {
    const t = outputs[name];
    assert.ok(t, `output ${name} missing`);
    assert.deepEqual(t.dims, [1], `${name} has shape [1]`);
    res[name] = t.data as Float32Array;
  }
  return res;
}

for (const file of vectorFiles) {
  const vecPath = path.join(repoRoot, 'test/vectors', file);
  test(`${file}: exported graph matches the autograd reference and is deterministic`, async () => {
    assert.ok(existsSync(vecPath), `${vecPath} missing: run python3 -m fghv make-vectors`);
    const vec = JSON.parse(readFileSync(vecPath, 'utf8')) as ReferenceVectors;
    const onnxPath = path.join(repoRoot, vec.onnx);
    const sha = createHash('sha256').update(readFileSync(onnxPath)).digest('hex');
    assert.equal(sha, vec.sha256, `${vec.onnx} is not the graph the vectors were made for`);
    const session = await worker.load(onnxPath, { providers: ['cpu'], intraOpThreads: 1 });
    assert.deepEqual(
      session.outputs.map((o) => o.name),
      [...OUTPUTS],
    );
    assert.ok(vec.cases.length >= 3, 'several inputs');
    for (const c of vec.cases) {
      const first = await runOnce(session, c.input, vec.size);
      for (const name of OUTPUTS) {
        const got = first[name][0] as number;
        const want = c[name];
        const abs = vec.tolerance.abs[name];
        const rel = vec.tolerance.rel[name];
        if (abs !== undefined)
          assert.ok(Math.abs(got - want) <= abs, `${name}: onnx ${got}, reference ${want}`);
        if (rel !== undefined) {
          const err = Math.abs(got - want) / Math.max(Math.abs(want), 1e-6);
          assert.ok(err <= rel, `${name}: onnx ${got}, reference ${want}, relative error ${err}`);
        }
      }
      const second = await runOnce(session, c.input, vec.size);
      for (const name of OUTPUTS) {
        const a = new Uint32Array(first[name].buffer, first[name].byteOffset, 1)[0];
        const b = new Uint32Array(second[name].buffer, second[name].byteOffset, 1)[0];
        assert.equal(a, b, `${name} differs between two runs on the same input`);
      }
    }
    await session.release();
  });
}

test('fp16 variant of the demo model stays close to the fp32 graph', async () => {
  const dir = path.join(repoRoot, 'models/fghv-demo');
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    file: string;
    input: { shape: number[] };
    variants: { fp16: { file: string } };
  };
  const size = manifest.input.shape[2] as number;
  const fp32 = await worker.load(path.join(dir, manifest.file), { providers: ['cpu'], intraOpThreads: 1 });
  const fp16 = await worker.load(path.join(dir, manifest.variants.fp16.file), {
    providers: ['cpu'],
    intraOpThreads: 1,
  });
  const spec = { a: 7919, b: 13, m: 2001 };
  const a = await runOnce(fp32, spec, size);
  const b = await runOnce(fp16, spec, size);
  // fp16 arithmetic: loose bounds, only to catch a broken conversion.
  assert.ok(Math.abs((a.p_real[0] as number) - (b.p_real[0] as number)) <= 0.02, 'p_real fp16 vs fp32');
  assert.ok(Math.abs((a.delta_kl[0] as number) - (b.delta_kl[0] as number)) <= 0.05, 'delta_kl fp16 vs fp32');
  await fp32.release();
  await fp16.release();
});
