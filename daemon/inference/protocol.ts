/** Messages between the main thread and the inference worker. Tensors travel as transferable buffers. */

export interface WireTensor {
  /** 'float32' | 'float16' | 'int64' ... as ONNX Runtime names them. */
  type: string;
  dims: number[];
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface SessionOptionsWire {
  /** Execution providers to try, one at a time, in order. */
  providers: string[];
  intraOpThreads: number;
  /** Intra-op threads busy-wait for work between operators (ORT's default) or sleep. */
  allowSpinning: boolean;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  /** On the CPU provider, run PRelu as Relu/Min/Mul/Add (prelu-rewrite.ts). */
  rewritePRelu: boolean;
}

export interface IoMeta {
  name: string;
  /** Dimensions as declared by the model; strings for symbolic dims, null when unknown. */
  dims: (number | string)[] | null;
  type: string | null;
}

export type Request =
  | { id: number; op: 'load'; path: string; options: SessionOptionsWire }
  | { id: number; op: 'run'; session: number; feeds: Record<string, WireTensor>; outputs?: string[] }
  | { id: number; op: 'release'; session: number };

export type Response =
  | {
      id: number;
      ok: true;
      op: 'load';
      session: number;
      provider: string;
      inputs: IoMeta[];
      outputs: IoMeta[];
      tried: ProviderAttempt[];
      /** PRelu nodes rewritten for the CPU provider (0: the file was loaded as it is). */
      rewrites: number;
    }
  | { id: number; ok: true; op: 'run'; outputs: Record<string, WireTensor>; ms: number }
  | { id: number; ok: true; op: 'release' }
  | { id: number; ok: false; error: { message: string; code?: string; tried?: ProviderAttempt[] } };

export interface ProviderAttempt {
  provider: string;
  ok: boolean;
  error?: string;
}
