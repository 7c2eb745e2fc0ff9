/**
 * Main-thread side of the inference worker: loads models into ONNX Runtime sessions that live
 * in worker threads ("lanes"), and runs them without blocking the event loop.
 *
 * onnxruntime-node's run() is synchronous on its thread, so one thread serialises every model
 * it holds. The daemon puts the detector in lane 0 and the liveness model(s) in lane 1: the
 * next frame's detection then runs at the same time as the current frame's liveness (the
 * pipeline's detect-ahead), each on its own core with one intra-op thread on a 2-core device,
 * instead of both models taking turns on both cores with thread hand-offs in between
 * (bench/performance.md, change 8). A lane's thread starts on its first load.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
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
  /** The worker thread that holds the session (LANES); default DETECTOR_LANE. */
  lane?: number;
  /** On the CPU provider, run PRelu as Relu/Min/Mul/Add (prelu-rewrite.ts). Default true. */
  rewritePRelu?: boolean;
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
  /** PRelu nodes rewritten for the CPU provider (prelu-rewrite.ts); 0 when loaded as it is. */
  readonly rewrites: number;
  run(
    feeds: Record<string, WireTensor>,
    outputNames?: string[],
  ): Promise<{ outputs: Record<string, WireTensor>; ms: number }>;
  release(): Promise<void>;
}

/** A request without its id (distributes over the union). */
type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

type Pending = { resolve: (r: Response) => void; reject: (e: Error) => void };

/** Lane of the face detector, and of the liveness model(s). */
export const DETECTOR_LANE = 0;
export const LIVENESS_LANE = 1;
export const LANES = 2;

/**
 * Intra-op threads per session when the config says 0 (auto): the cores shared between the two
 * lanes, at least one each (2 cores: 1 + 1; 6 cores: 3 + 3). An explicit count is used as given.
 */
export function autoIntraOpThreads(requested: number, cores = availableParallelism()): number {
  return requested > 0 ? requested : Math.max(1, Math.floor(cores / LANES));
}

/** One worker thread with its sessions. */
class Lane {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  dead: Error | null = null;

  constructor() {
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

  call(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<Response> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const full = { ...req, id } as Request;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage(full, transfer);
      } catch (e) {
        // e.g. a feed whose buffer was already transferred: fail this call, never hang it.
        this.pending.delete(id);
        reject(
          new KioskError(
            ErrorCodes.INFERENCE_FAILED,
            `cannot send the request to the inference worker: ${asError(e).message}`,
            {
              cause: e,
            },
          ),
        );
      }
    });
  }

  async close(): Promise<void> {
    this.dead ??= new KioskError(ErrorCodes.WORKER_DIED, 'inference worker closed');
    await this.worker.terminate();
  }
}

export class InferenceWorker {
  private readonly lanes: (Lane | null)[] = Array.from({ length: LANES }, () => null);
  private closed: KioskError | null = null;

  private constructor() {}

  static start(): InferenceWorker {
    return new InferenceWorker();
  }

  private lane(n: number): Lane {
    if (this.closed) throw this.closed;
    if (!Number.isInteger(n) || n < 0 || n >= LANES)
      throw new KioskError(ErrorCodes.INTERNAL, `no inference lane ${n} (0..${LANES - 1})`);
    let lane = this.lanes[n];
    if (!lane) {
      lane = new Lane();
      this.lanes[n] = lane;
    }
    return lane;
  }

  async load(path: string, options: LoadOptions = {}): Promise<OrtSession> {
    for (const [k, v] of Object.entries(options.env ?? {})) process.env[k] = v;
    const lane = this.lane(options.lane ?? DETECTOR_LANE);
    const res = await lane.call({
      op: 'load',
      path,
      options: {
        providers: options.providers ?? ['cpu'],
        intraOpThreads: autoIntraOpThreads(options.intraOpThreads ?? 0),
        allowSpinning: options.allowSpinning ?? false,
        graphOptimization: options.graphOptimization ?? 'all',
        rewritePRelu: options.rewritePRelu ?? true,
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
      rewrites: res.rewrites,
      run: async (feeds, outputNames) => {
        // Feeds are transferred, not copied: callers must not reuse their buffers afterwards.
        const transfer: ArrayBuffer[] = [];
        for (const [name, t] of Object.entries(feeds)) {
          if (!(t.data.buffer instanceof ArrayBuffer)) continue;
          // A transferred buffer is detached: length 0, whatever its dims say.
          if (t.data.buffer.byteLength === 0 && t.dims.every((d) => d > 0))
            throw new KioskError(
              ErrorCodes.INFERENCE_FAILED,
              `feed "${name}" was already sent to the inference worker (its buffer is detached); make a new tensor per run`,
            );
          if (!transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
        }
        const r = await lane.call(
          { op: 'run', session: sessionId, feeds, ...(outputNames ? { outputs: outputNames } : {}) },
          transfer,
        );
        if (!r.ok) throw new KioskError(ErrorCodes.INFERENCE_FAILED, `inference failed: ${r.error.message}`);
        if (r.op !== 'run') throw new KioskError(ErrorCodes.INTERNAL, 'unexpected worker reply');
        return { outputs: r.outputs, ms: r.ms };
      },
      release: async () => {
        await lane.call({ op: 'release', session: sessionId }).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.closed ??= new KioskError(ErrorCodes.WORKER_DIED, 'inference worker closed');
    await Promise.all(this.lanes.map((l) => l?.close()));
  }
}

/** Float32 tensor helper. */
export function f32(data: Float32Array, dims: number[]): WireTensor {
  return { type: 'float32', dims, data };
}
