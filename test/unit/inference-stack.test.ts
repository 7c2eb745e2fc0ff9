// The one inference stack (daemon/models/inference-stack.ts): what it builds for each caller,
// the site's stored thresholds applied to the device's own model only, a part-way failure that
// closes what was built, and the rule that no other file outside daemon/inference/ starts a worker.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { writeThresholds } from '../../daemon/liveness/thresholds-store.js';
import { openInferenceStack } from '../../daemon/models/inference-stack.js';
import { repoRoot } from '../helpers/paths.js';
import { writeStubModel } from '../helpers/stub-model.js';
import { tempDir } from '../helpers/temp.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('inference stack', () => {
  it('is the only file outside daemon/inference/ that starts an inference worker', () => {
    const starters = ['core', 'config', 'drivers', 'daemon', 'scripts']
      .flatMap((d) => sources(path.join(repoRoot, d)))
      .map((f) => path.relative(repoRoot, f))
      .filter((f) => !f.startsWith(`daemon${path.sep}inference${path.sep}`))
      .filter((f) => readFileSync(path.join(repoRoot, f), 'utf8').includes('InferenceWorker.start('));
    assert.deepEqual(starters, [path.join('daemon', 'models', 'inference-stack.ts')]);
  });

  it("builds the device's model with its stored thresholds, a given manifest without them, and a bare worker", async () => {
    const dir = tempDir('stack');
    const stub = writeStubModel(dir, 'stub', [0.3, 0.7]);
    const config = configSchema.parse({
      device: { state_dir: path.join(dir, 'state') },
      liveness: { manifest: stub.manifest, providers: ['cpu'], intra_op_threads: 1 },
    });
    writeThresholds(config.device.state_dir, { model_sha256: stub.sha256, thresholds: { spoof_max: 0.3 } });

    const own = await openInferenceStack({ liveness: { device: config, log: null }, warmUp: true });
    try {
      assert.equal(own.detector, null);
      assert.equal(own.liveness.info.sha256, stub.sha256);
      assert.deepEqual(own.liveness.thresholds.active, { live_min: 0.8, spoof_max: 0.3 });
    } finally {
      await own.close();
    }

    const given = await openInferenceStack({
      liveness: { manifest: stub.manifest, options: { providers: ['cpu'], intraOpThreads: 1 } },
    });
    try {
      assert.deepEqual(given.liveness.thresholds.active, { live_min: 0.8, spoof_max: 0.5 });
    } finally {
      await given.close();
    }

    const bare = await openInferenceStack({});
    try {
      assert.equal(bare.liveness, null);
      assert.equal(bare.detector, null);
    } finally {
      await bare.close();
    }
  });

  it('a detector that cannot load fails the whole stack with its code (and closes the model and worker)', async () => {
    const dir = tempDir('stack-fail');
    const stub = writeStubModel(dir, 'stub', [0.3, 0.7]);
    await assert.rejects(
      openInferenceStack({
        liveness: { manifest: stub.manifest, options: { providers: ['cpu'], intraOpThreads: 1 } },
        detector: {
          name: 'yunet',
          model: path.join(dir, 'missing.onnx'),
          scoreThreshold: 0.6,
          nmsIou: 0.3,
          maxFaces: 10,
          providers: ['cpu'],
          intraOpThreads: 1,
          repoRoot,
        },
      }),
      (e) => isKioskError(e) && e.code === ErrorCodes.MODEL_NOT_FOUND,
    );
    // A worker left open would keep this test file from exiting: the runner would time out.
  });
});
