/**
 * The part of a live model update that happens before the switch: verify and stage the files,
 * load the new model in the running inference worker, warm it up and self-test it. On any
 * failure the staged files are removed and the error is thrown: the running model is untouched.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { MAX_SMALL_FILE_BYTES, readCheckedText } from '../../core/file-rule.js';
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

/** A detached signature file is a few dozen bytes: anything else is not read. */
const MAX_SIGNATURE_FILE_BYTES = 4096;

function readSignature(opts: PrepareOptions): string | null {
  if (opts.signature) return opts.signature;
  const file = `${opts.modelFile}.sig`;
  try {
    const st = lstatSync(file);
    if (!st.isFile() || st.size > MAX_SIGNATURE_FILE_BYTES) return null;
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export { MAX_MANIFEST_BYTES } from '../liveness/manifest.js';

/**
 * The path of a file the `model_update` command may read: a regular file (no FIFO, device or
 * symlink) of at most `maxBytes`, inside `dir` after every link is resolved; checked before
 * any byte is read. Every refusal has the same message, which names no path and no hash, so
 * the command cannot be used to learn anything about other files.
 */
export function confinedFile(dir: string, requested: string, maxBytes: number, what: string): string {
  const refuse = () =>
    new KioskError(
      ErrorCodes.COMMAND_INVALID,
      `model_update: ${what} must name a regular file of at most ${maxBytes} bytes inside model_update.incoming_dir`,
    );
  let realDir: string;
  let real: string;
  try {
    realDir = realpathSync(dir);
    const abs = path.resolve(realDir, requested);
    if (!abs.startsWith(realDir + path.sep)) throw refuse();
    const st = lstatSync(abs);
    if (!st.isFile() || st.size > maxBytes) throw refuse();
    real = realpathSync(abs);
  } catch {
    throw refuse();
  }
  if (!real.startsWith(realDir + path.sep)) throw refuse();
  return real;
}

export async function prepareModel(
  worker: InferenceWorker,
  config: Pick<Config, 'device' | 'liveness' | 'model_update'>,
  opts: PrepareOptions,
): Promise<PreparedModel> {
  const keyFile = config.model_update.public_key_file;
  let publicKey = null;
  if (keyFile !== null) {
    const text = readCheckedText(path.resolve(keyFile), {
      what: 'model_update.public_key_file',
      maxBytes: MAX_SMALL_FILE_BYTES,
      code: ErrorCodes.MODEL_SIGNATURE_INVALID,
    });
    publicKey = modelPublicKey(text);
  }
  const staged = await stageModel({
    stateDir: config.device.state_dir,
    modelFile: opts.modelFile,
    manifestFile: opts.manifestFile,
    publicKey,
    signature: publicKey ? readSignature(opts) : null,
    maxModelBytes: Math.round(config.model_update.max_model_mb * 2 ** 20),
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
