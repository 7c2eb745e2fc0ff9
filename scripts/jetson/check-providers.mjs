#!/usr/bin/env node
// Which execution providers really create a session on this machine (run on the Jetson after
// build-onnxruntime.sh). Usage: node scripts/jetson/check-providers.mjs [MODEL.onnx]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const model =
  process.argv[2] ?? path.join(root, 'models/blazeface/face_detection_front_128x128_barracuda.onnx');
for (const ep of ['tensorrt', 'cuda', 'cpu']) {
  const t0 = performance.now();
  try {
    const s = await ort.InferenceSession.create(model, { executionProviders: [ep] });
    console.log(`${ep}: ok (${Math.round(performance.now() - t0)} ms to create a session)`);
    await s.release();
  } catch (e) {
    console.log(`${ep}: unavailable: ${String(e.message ?? e).split('\n')[0]}`);
  }
}
