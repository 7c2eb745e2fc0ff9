/**
 * `fghv-kiosk model install FILE MANIFEST` with the daemon not running (or before a restart):
 * the same verification, warm-up and self-test as a live update, in a worker of its own; on
 * success the model becomes `current` in the state directory and the daemon starts with it.
 */
import type { Config } from '../../config/schema.js';
import { openInferenceStack } from './inference-stack.js';
import { commitInstalled, type InstalledModels } from './model-install.js';
import { prepareModel } from './model-update.js';

export async function installModelOffline(
  config: Config,
  modelFile: string,
  manifestFile: string,
  signature?: string,
): Promise<InstalledModels> {
  const { worker, close } = await openInferenceStack({});
  try {
    const { model, staged } = await prepareModel(worker, config, {
      modelFile,
      manifestFile,
      signature: signature ?? null,
    });
    await model.close();
    return commitInstalled(config.device.state_dir, staged);
  } finally {
    await close();
  }
}
