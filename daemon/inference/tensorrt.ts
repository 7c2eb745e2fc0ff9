/**
 * TensorRT options. onnxruntime-node's binding passes only `deviceId` to the TensorRT
 * provider and drops every `trt_*` option (environment.md), but the provider itself reads its
 * ORT_TENSORRT_* environment variables when a session is created, with any binding (npm or a
 * source build on a Jetson). So the daemon sets them, per model, right before loading it.
 */
import path from 'node:path';

export interface TensorRtOptions {
  fp16: boolean;
  engine_cache: boolean;
  max_workspace_mb: number;
}

/**
 * Environment for one model's TensorRT session. The engine cache lives in the state
 * directory, one folder per model sha256: the provider names its engine files after the
 * graph and the GPU's compute capability and rebuilds when TensorRT's version changes, so an
 * engine is never used for another model, GPU or TensorRT version.
 */
export function tensorrtEnv(
  stateDir: string,
  modelSha256: string,
  opts: TensorRtOptions,
): Record<string, string> {
  const cache = path.join(stateDir, 'trt-cache', modelSha256.slice(0, 16));
  return {
    ORT_TENSORRT_FP16_ENABLE: opts.fp16 ? '1' : '0',
    ORT_TENSORRT_ENGINE_CACHE_ENABLE: opts.engine_cache ? '1' : '0',
    ORT_TENSORRT_CACHE_PATH: cache,
    ORT_TENSORRT_TIMING_CACHE_ENABLE: opts.engine_cache ? '1' : '0',
    ORT_TENSORRT_MAX_WORKSPACE_SIZE: String(Math.round(opts.max_workspace_mb * 2 ** 20)),
  };
}
