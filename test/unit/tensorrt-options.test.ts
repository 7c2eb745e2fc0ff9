import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { tensorrtEnv } from '../../daemon/inference/tensorrt.js';
import { livenessOptions } from '../../daemon/liveness/liveness-model.js';

describe('TensorRT options', () => {
  it('become the provider environment, with the engine cache per model in the state directory', () => {
    const env = tensorrtEnv('/var/lib/fghv-kiosk', 'ab'.repeat(32), {
      fp16: true,
      engine_cache: true,
      max_workspace_mb: 512,
    });
    assert.equal(env.ORT_TENSORRT_FP16_ENABLE, '1');
    assert.equal(env.ORT_TENSORRT_ENGINE_CACHE_ENABLE, '1');
    assert.equal(env.ORT_TENSORRT_CACHE_PATH, `/var/lib/fghv-kiosk/trt-cache/${'ab'.repeat(8)}`);
    assert.equal(env.ORT_TENSORRT_MAX_WORKSPACE_SIZE, String(512 * 1024 * 1024));
    const off = tensorrtEnv('/s', 'cd'.repeat(32), { fp16: false, engine_cache: false, max_workspace_mb: 1 });
    assert.equal(off.ORT_TENSORRT_FP16_ENABLE, '0');
    assert.equal(off.ORT_TENSORRT_ENGINE_CACHE_ENABLE, '0');
  });

  it('come from the config for every liveness model load', () => {
    const config = validateConfig(
      { device: { state_dir: '/st' }, liveness: { tensorrt: { fp16: false } } },
      't',
    );
    const opts = livenessOptions(config);
    assert.deepEqual(opts.providers, ['tensorrt', 'cuda', 'cpu']);
    const env = opts.providerEnv?.('ef'.repeat(32));
    assert.equal(env?.ORT_TENSORRT_FP16_ENABLE, '0');
    assert.equal(env?.ORT_TENSORRT_CACHE_PATH, `/st/trt-cache/${'ef'.repeat(8)}`);
  });
});
