/**
 * Main-thread side of the inference worker: loads models into ONNX Runtime sessions that live
 * in a worker thread, and runs them without blocking the event loop. One worker serialises
 * all inference (detector and liveness models), which is what a 2-core kiosk wants; the
 * per-session intra-op thread count sets the parallelism inside each run.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import type {
  IoMeta,
  ProviderAttempt,
  Request,
  Response,
  SessionOptionsWire,
  WireTensor,
} from './protocol.js';

export type { IoMeta, ProviderAttempt, WireTensor } from './protocol.js';

export interface LoadOptions {
  providers?: string[];
  intraOpThreads?: number;
  /**
   * ONNX Runtime's session.intra_op.allow_spinning. Default false, like the daemon's config:
   * idle intra-op threads sleep instead of spinning, so the detector's and the liveness model's
   * pools do not fight each other, the decoder and the event loop for the cores
   * (bench/performance.md).
   */
  allowSpinning?: boolean;
  graphOptimization?: SessionOptionsWire['graphOptimization'];
  /**
   * Environment variables the execution providers read at session creation (TensorRT's
   * ORT_TENSORRT_*). Set in the process environment before the load: native code in the
   * worker reads the real environment, which only the main thread's process.env writes to.
   */
  env?: Record<string, string>;
}

export interface OrtSession {
  readonly provider: string;
  readonly tried: ProviderAttempt[];
  readonly inputs: IoMeta[];
  readonly outputs: IoMeta[];
  run(
    feeds: Record<string, WireTensor>,
    outputNames?: string[],
  ): Promise<{ outputs: Record<string, WireTensor>; ms: number }>;
  release(): Promise<void>;
}

/** A request without its id (distributes over the union). */
type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

type Pending = { resolve: (r: Response) => void; reject: (e: Error) => void };

export class InferenceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;

  private constructor() {
    this.worker = new Worker(new URL('./ort-worker.js', import.meta.url));
    this.worker.on('message', (res: Response) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      p.resolve(res);
    });
    const fail = (err: Error) => {
      this.dead = new KioskError(ErrorCodes.WORKER_DIED, `inference worker died: ${err.message}`, {
        cause: err,
      });
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => {
      if (!this.dead) fail(new Error(`exit code ${code}`));
    });
  }

  static start(): InferenceWorker {
    return new InferenceWorker();
  }

  private call(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<Response> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const full = { ...req, id } as Request;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(full, transfer);
    });
  }

  async load(path: string, options: LoadOptions = {}): Promise<OrtSession> {
    for (const [k, v] of Object.entries(options.env ?? {})) process.env[k] = v;
    const res = await this.call({
      op: 'load',
      path,
      options: {
        providers: options.providers ?? ['cpu'],
        intraOpThreads: options.intraOpThreads ?? 0,
        allowSpinning: options.allowSpinning ?? false,
        graphOptimization: options.graphOptimization ?? 'all',
      },
    });
    if (!res.ok) {
      const code =
        res.error.code === 'MODEL_CORRUPT' ? ErrorCodes.MODEL_CORRUPT : ErrorCodes.PROVIDER_UNAVAILABLE;
      const tried = res.error.tried?.map((t) => `${t.provider}: ${t.error ?? 'ok'}`).join('; ');
      throw new KioskError(code, `cannot load ${path}: ${res.error.message}${tried ? ` (${tried})` : ''}`, {
        details: { path, tried: res.error.tried },
      });
    }
    if (res.op !== 'load') throw new KioskError(ErrorCodes.INTERNAL, 'unexpected worker reply');
    const sessionId = res.session;
    return {
      provider: res.provider,
      tried: res.tried,
      inputs: res.inputs,
      outputs: res.outputs,
      run: async (feeds, outputNames) => {
        // Feeds are transferred, not copied: callers must not reuse their buffers afterwards.
        const transfer: ArrayBuffer[] = [];
        for (const t of Object.values(feeds)) {
          if (t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer))
            transfer.push(t.data.buffer);
        }
        const r = await this.call(
          { op: 'run', session: sessionId, feeds, ...(outputNames ? { outputs: outputNames } : {}) },
          transfer,
        );
        if (!r.ok) throw new KioskError(ErrorCodes.INFERENCE_FAILED, `inference failed: ${r.error.message}`);
        if (r.op !== 'run') throw new KioskError(ErrorCodes.INTERNAL, 'unexpected worker reply');
        return { outputs: r.outputs, ms: r.ms };
      },
      release: async () => {
        await this.call({ op: 'release', session: sessionId }).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.dead ??= new KioskError(ErrorCodes.WORKER_DIED, 'inference worker closed');
    await this.worker.terminate();
  }
}

/** Float32 tensor helper. */
export function f32(data: Float32Array, dims: number[]): WireTensor {
  return { type: 'float32', dims, data };
}
