/**
 * ONNX Runtime (CPU provider) latency of model files, batch 1, for the report's "ONNX Runtime
 * versus PyTorch eager" and "GFLOP/s of the backbone" rows. In-process and synchronous on
 * purpose: this times the network alone, not the daemon (which runs it in a worker thread).
 *
 *   node dist/bench/perf/ort-models.js OUT.json RUNS THREADS[,THREADS] MODEL.onnx...
 */
import { writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { percentiles } from './stats.js';

export interface OrtTiming {
  model: string;
  threads: number;
  input: number[];
  runs: number;
  /** Per-run latency percentiles, ms, after two warm-up runs. */
  ms: ReturnType<typeof percentiles>;
}

async function time(model: string, threads: number, runs: number): Promise<OrtTiming> {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds: Record<string, ort.Tensor> = {};
  let shape: number[] = [];
  for (const [i, name] of session.inputNames.entries()) {
    const meta = session.inputMetadata[i] as { shape?: readonly (number | string)[] } | undefined;
    shape = (meta?.shape ?? [1]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = Math.sin(k) * 0.5;
    feeds[name] = new ort.Tensor('float32', data, shape);
  }
  for (let i = 0; i < 2; i++) await session.run(feeds);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(feeds);
    ms.push(performance.now() - t);
  }
  await session.release();
  return { model, threads, input: shape, runs, ms: percentiles(ms) };
}

const [out, runsArg, threadsArg, ...models] = process.argv.slice(2);
if (!out || !runsArg || !threadsArg || models.length === 0) {
  console.error('usage: ort-models.js OUT.json RUNS THREADS[,THREADS] MODEL.onnx...');
  process.exit(2);
}
const rows: OrtTiming[] = [];
for (const model of models) {
  for (const threads of threadsArg.split(',').map(Number)) {
    const runs = Number(runsArg);
    rows.push(await time(model, threads, runs));
    console.log(`${model} ${threads} thr: p50 ${rows[rows.length - 1]?.ms.p50} ms`);
  }
}
writeFileSync(out, `${JSON.stringify(rows, null, 1)}\n`);
