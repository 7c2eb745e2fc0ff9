/**
 * Catalogue models for tests, installed through the real `model fetch` path
 * (daemon/models/model-fetch.ts) with ../shared/data/models as the mirror folder, once per test
 * process, into a temp models folder removed at exit. Without ../shared/data nothing is
 * installed and the paths returned do not exist: the tests that need them skip
 * (needsSharedData names the path).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { installedModelPath } from '../../config/models.js';
import { fetchModels } from '../../daemon/models/model-fetch.js';
import { needsSharedData, shared } from './paths.js';

/** The models folder of this test process. */
export const TEST_MODELS_DIR = mkdtempSync(path.join(tmpdir(), 'fghv-test-models-'));
process.on('exit', () => rmSync(TEST_MODELS_DIR, { recursive: true, force: true }));

const pending = new Map<string, Promise<string>>();

/** The installed path of a catalogue model (manifest for liveness models, ONNX for detectors). */
export function testModel(name: string): Promise<string> {
  let p = pending.get(name);
  if (!p) {
    p = needsSharedData('models')
      ? Promise.resolve(installedModelPath(name, TEST_MODELS_DIR))
      : fetchModels({ names: [name], modelsDir: TEST_MODELS_DIR, mirror: shared('models') }).then(
          (r) => (r[r.length - 1] as { path: string }).path,
        );
    pending.set(name, p);
  }
  return p;
}
