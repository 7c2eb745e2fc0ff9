#!/usr/bin/env node
// ONNX Runtime side of bench/fghv.bench.py: median latency of each exported FGHV graph with
// 1 and 2 intra-op threads (CPU provider). Prints {name: {"1": ms, "2": ms}} as JSON on stdout.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const rows = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const result = {};
for (const row of rows) {
  result[row.name] = {};
  for (const threads of [1, 2]) {
    const session = await ort.InferenceSession.create(row.onnx, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    const n = 3 * row.size * row.size;
    const feed = () => ({
      input: new ort.Tensor('float32', new Float32Array(n).fill(0.1), [1, 3, row.size, row.size]),
    });
    for (let i = 0; i < 2; i++) await session.run(feed());
    const times = [];
    for (let i = 0; i < row.runs; i++) {
      const input = feed();
      const t = performance.now();
      await session.run(input);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    result[row.name][String(threads)] = Math.round(times[Math.floor(times.length / 2)] * 100) / 100;
    await session.release();
  }
}
process.stdout.write(JSON.stringify(result));
