/**
 * Worker thread that owns ONNX Runtime sessions. onnxruntime-node's session creation and
 * `run()` are synchronous on the calling thread, so they live here, off the event loop that
 * serves MQTT and the camera.
 */

import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { rewritePRelu } from './prelu-rewrite.js';
import type { IoMeta, ProviderAttempt, Request, Response, WireTensor } from './protocol.js';

if (!parentPort) throw new Error('ort-worker must run in a worker thread');
const port = parentPort;

// Provider-load failures (no CUDA/TensorRT libraries) are expected when falling back; they are
// reported through the attempt list, not ORT's own stderr logging.
ort.env.logLevel = 'fatal';

const sessions = new Map<number, ort.InferenceSession>();
let nextSession = 1;

function meta(session: ort.InferenceSession, which: 'input' | 'output'): IoMeta[] {
  const names = which === 'input' ? session.inputNames : session.outputNames;
  const all = (which === 'input' ? session.inputMetadata : session.outputMetadata) as unknown as
    | readonly { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }[]
    | undefined;
  return names.map((name, i) => {
    const m = all?.[i];
    if (m?.isTensor) return { name, dims: m.shape ? [...m.shape] : null, type: m.type ?? null };
    return { name, dims: null, type: null };
  });
}

/** The CPU provider's model bytes with PRelu rewritten (prelu-rewrite.ts), or null: load the file as it is. */
async function cpuRewrite(
  path: string,
  wanted: boolean,
): Promise<{ bytes: Uint8Array; rewritten: number } | null> {
  if (!wanted) return null;
  try {
    return rewritePRelu(await readFile(path));
  } catch {
    return null; // unreadable: ORT's own load reports it
  }
}

async function load(path: string, req: Extract<Request, { op: 'load' }>): Promise<Response> {
  const tried: ProviderAttempt[] = [];
  for (const provider of req.options.providers) {
    try {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [provider],
        intraOpNumThreads: req.options.intraOpThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: req.options.graphOptimization,
        logSeverityLevel: 3,
        ...(req.options.allowSpinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
      };
      const rewrite = provider === 'cpu' ? await cpuRewrite(path, req.options.rewritePRelu) : null;
      let session: ort.InferenceSession | null = null;
      let rewrites = 0;
      if (rewrite) {
        // A model ORT cannot take from memory (external weights) is loaded from its file below.
        session = await ort.InferenceSession.create(rewrite.bytes, options).catch(() => null);
        if (session) rewrites = rewrite.rewritten;
      }
      session ??= await ort.InferenceSession.create(path, options);
      tried.push({ provider, ok: true });
      const id = nextSession++;
      sessions.set(id, session);
      return {
        id: req.id,
        ok: true,
        op: 'load',
        session: id,
        provider,
        inputs: meta(session, 'input'),
        outputs: meta(session, 'output'),
        tried,
        rewrites,
      };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      tried.push({ provider, ok: false, error: message.split('\n')[0]?.slice(0, 300) ?? message });
      // A model that ORT cannot parse fails the same way on every provider: stop early.
      if (
        /protobuf|Load model|INVALID_PROTOBUF|INVALID_GRAPH|NO_SUCHFILE|file_size|No such file/i.test(message)
      ) {
        return { id: req.id, ok: false, error: { message, code: 'MODEL_CORRUPT', tried } };
      }
    }
  }
  return {
    id: req.id,
    ok: false,
    error: { message: 'no execution provider could load the model', code: 'PROVIDER_UNAVAILABLE', tried },
  };
}

async function run(req: Extract<Request, { op: 'run' }>): Promise<Response> {
  const session = sessions.get(req.session);
  if (!session) return { id: req.id, ok: false, error: { message: `unknown session ${req.session}` } };
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(req.feeds)) {
    feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
  }
  const t0 = performance.now();
  const result = req.outputs ? await session.run(feeds, req.outputs) : await session.run(feeds);
  const ms = performance.now() - t0;
  const outputs: Record<string, WireTensor> = {};
  for (const [name, tensor] of Object.entries(result)) {
    // Copy: the tensor may be backed by native memory, which cannot be transferred.
    outputs[name] = {
      type: tensor.type,
      dims: [...tensor.dims],
      data: (tensor.data as Float32Array).slice(),
    };
  }
  return { id: req.id, ok: true, op: 'run', outputs, ms };
}

port.on('message', async (req: Request) => {
  let res: Response;
  try {
    if (req.op === 'load') res = await load(req.path, req);
    else if (req.op === 'run') res = await run(req);
    else {
      const s = sessions.get(req.session);
      sessions.delete(req.session);
      await s?.release();
      res = { id: req.id, ok: true, op: 'release' };
    }
  } catch (e) {
    res = { id: req.id, ok: false, error: { message: e instanceof Error ? e.message : String(e) } };
  }
  const transfer: ArrayBuffer[] = [];
  if (res.ok && res.op === 'run') {
    for (const t of Object.values(res.outputs)) {
      const buf = t.data.buffer;
      if (buf instanceof ArrayBuffer && !transfer.includes(buf)) transfer.push(buf);
    }
  }
  port.postMessage(res, transfer);
});
