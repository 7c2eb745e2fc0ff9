/**
 * The part of a live model update that happens before the switch: verify and stage the files,
 * load the new model in the running inference worker, warm it up and self-test it. On any
 * failure the staged files are removed and the error is thrown: the running model is untouched.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { asError, ErrorCodes, KioskError } from '../errors.js';
import type { InferenceWorker } from '../inference/inference-worker.js';
import { LivenessModel, livenessOptions } from '../liveness/liveness-model.js';
import {
  discardStaged,
  modelPublicKey,
  type StagedModel,
  selfTestModel,
  stageModel,
} from './model-install.js';

export interface PreparedModel {
  model: LivenessModel;
  staged: StagedModel;
}

export interface PrepareOptions {
  modelFile: string;
  manifestFile: string;
  /** base64 Ed25519 signature of the model file; default: the content of `<modelFile>.sig` if present. */
  signature?: string | null;
}

function readSignature(opts: PrepareOptions): string | null {
  if (opts.signature) return opts.signature;
  try {
    return readFileSync(`${opts.modelFile}.sig`, 'utf8');
  } catch {
    return null;
  }
}

export async function prepareModel(
  worker: InferenceWorker,
  config: Pick<Config, 'device' | 'liveness' | 'model_update'>,
  opts: PrepareOptions,
): Promise<PreparedModel> {
  const keyFile = config.model_update.public_key_file;
  let publicKey = null;
  if (keyFile !== null) {
    let text: string;
    try {
      text = readFileSync(path.resolve(keyFile), 'utf8');
    } catch (cause) {
      throw new KioskError(
        ErrorCodes.MODEL_SIGNATURE_INVALID,
        `model_update.public_key_file ${keyFile} cannot be read`,
        {
          cause,
        },
      );
    }
    publicKey = modelPublicKey(text);
  }
  const staged = await stageModel({
    stateDir: config.device.state_dir,
    modelFile: opts.modelFile,
    manifestFile: opts.manifestFile,
    publicKey,
    signature: publicKey ? readSignature(opts) : null,
  });
  let model: LivenessModel | null = null;
  try {
    model = await LivenessModel.load(worker, staged.manifestPath, livenessOptions(config));
    await model.warmUp();
    await selfTestModel(model);
    return { model, staged };
  } catch (e) {
    await model?.close().catch(() => undefined);
    discardStaged(config.device.state_dir, staged);
    if (e instanceof KioskError) throw e;
    throw new KioskError(ErrorCodes.MODEL_UPDATE_FAILED, `new model failed: ${asError(e).message}`, {
      cause: e,
    });
  }
}
