/**
 * Installing a liveness model into the state directory: verify (sha256 against its manifest,
 * Ed25519 signature when a key is configured), copy into `<state_dir>/models/<sha256[:16]>/`
 * with crash-safe writes, and record `current` and `previous` in `models/installed.json`.
 * The daemon starts with `current` when there is one. Loading, warm-up and the self-test
 * (`selfTestModel`) happen before `commitInstalled`, so a model that fails never becomes current.
 */
import { createHash, type KeyObject, verify } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { cv } from '../../core/cv.js';
import { ed25519PublicKey } from '../../core/ed25519.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { DEFAULT_MAX_MODEL_BYTES, readCheckedFile } from '../../core/file-rule.js';
import type { FaceDetection } from '../detect/types.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import { loadManifest, MAX_MANIFEST_BYTES, parseManifest } from '../liveness/manifest.js';

export interface InstalledModel {
  manifest: string;
  sha256: string;
  name: string;
  version: string;
  installed_at: string;
}

export interface InstalledModels {
  current: InstalledModel | null;
  previous: InstalledModel | null;
}

export interface StagedModel {
  dir: string;
  manifestPath: string;
  sha256: string;
  name: string;
  version: string;
  /** false when the same model was already installed (its directory is kept as it is). */
  created: boolean;
}

export const modelsDir = (stateDir: string) => path.join(stateDir, 'models');
const installedFile = (stateDir: string) => path.join(modelsDir(stateDir), 'installed.json');

export function readInstalled(stateDir: string): InstalledModels {
  const file = installedFile(stateDir);
  if (!existsSync(file)) return { current: null, previous: null };
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as InstalledModels;
    return { current: raw.current ?? null, previous: raw.previous ?? null };
  } catch (cause) {
    throw new KioskError(ErrorCodes.STATE_CORRUPT, `${file} is not valid JSON`, { cause });
  }
}

/** The manifest the daemon should start with: the installed current model, else the configured one. */
export function activeManifest(stateDir: string, configured: string): string {
  const cur = readInstalled(stateDir).current;
  return cur && existsSync(cur.manifest) ? cur.manifest : configured;
}

/** An Ed25519 public key from PEM or base64 of the raw 32 bytes. */
export function modelPublicKey(text: string): KeyObject {
  return ed25519PublicKey(
    text,
    ErrorCodes.MODEL_SIGNATURE_INVALID,
    'model_update.public_key_file: not an Ed25519 public key',
  );
}

export interface StageOptions {
  stateDir: string;
  modelFile: string;
  manifestFile: string;
  /** When set, `signature` (base64 Ed25519 over modelSignedBytes: model and manifest) is required and checked. */
  publicKey?: KeyObject | null;
  signature?: string | null;
  /** The model file's size limit (model_update.max_model_mb; default DEFAULT_MAX_MODEL_BYTES). */
  maxModelBytes?: number;
}

/**
 * What a model signature covers: the model's and the manifest's sha256 under a fixed label,
 * so neither the weights nor the manifest (purpose, thresholds, preprocessing) can be swapped
 * under a valid signature. To sign with OpenSSL:
 * `printf 'fghv-model-v2\n%s\n%s\n' MODEL_SHA256 MANIFEST_SHA256 > tbs && openssl pkeyutl -sign -rawin -inkey key.pem -in tbs | base64 -w0`
 */
export function modelSignedBytes(modelSha256: string, manifestBytes: Buffer): Buffer {
  const manifestSha = createHash('sha256').update(manifestBytes).digest('hex');
  return Buffer.from(`fghv-model-v2\n${modelSha256}\n${manifestSha}\n`, 'utf8');
}

/** Ed25519 signatures: 88 base64 characters, nothing else. */
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

/** Verify and copy a model and its manifest into the state directory (not yet current). */
export async function stageModel(opts: StageOptions): Promise<StagedModel> {
  const manifestAbs = path.resolve(opts.manifestFile);
  let rawManifest: Record<string, unknown>;
  let manifestBytes: Buffer;
  // Manifest and model by the file rule (core/file-rule.ts): regular files, bounded, checked first.
  manifestBytes = readCheckedFile(manifestAbs, {
    what: 'model manifest',
    maxBytes: MAX_MANIFEST_BYTES,
    code: ErrorCodes.MANIFEST_INVALID,
    missingCode: ErrorCodes.MANIFEST_NOT_FOUND,
  });
  try {
    rawManifest = JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new KioskError(
      ErrorCodes.MANIFEST_INVALID,
      `model manifest ${manifestAbs} cannot be read as JSON`,
      {
        cause,
      },
    );
  }
  const manifest = parseManifest(rawManifest, manifestAbs);
  if (manifest.family === 'ensemble') {
    throw new KioskError(
      ErrorCodes.MANIFEST_INVALID,
      'model install takes one model file and its manifest, not an ensemble',
    );
  }
  const bytes = readCheckedFile(path.resolve(opts.modelFile), {
    what: 'model file',
    maxBytes: opts.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES,
    code: ErrorCodes.MODEL_CORRUPT,
    missingCode: ErrorCodes.MODEL_NOT_FOUND,
  });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== manifest.sha256) {
    throw new KioskError(
      ErrorCodes.MODEL_SHA_MISMATCH,
      `model file ${opts.modelFile} has sha256 ${sha256}, its manifest says ${manifest.sha256}`,
      { details: { actual: sha256, expected: manifest.sha256 } },
    );
  }
  if (opts.publicKey) {
    const text = opts.signature?.trim() ?? '';
    const sig = SIGNATURE_B64.test(text) ? Buffer.from(text, 'base64') : null;
    if (!sig || !verify(null, modelSignedBytes(sha256, manifestBytes), opts.publicKey, sig)) {
      throw new KioskError(
        ErrorCodes.MODEL_SIGNATURE_INVALID,
        opts.signature
          ? 'the model signature does not verify over this model and manifest with model_update.public_key_file'
          : 'a signature is required (model_update.public_key_file is set)',
      );
    }
  }
  const dir = path.join(modelsDir(opts.stateDir), sha256.slice(0, 16));
  const file = `model${path.extname(manifest.file) || '.onnx'}`;
  const manifestPath = path.join(dir, 'manifest.json');
  const created = !existsSync(manifestPath);
  if (created) {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    writeFileAtomic(path.join(dir, file), bytes, 0o640);
    writeFileAtomic(manifestPath, `${JSON.stringify({ ...rawManifest, file }, null, 2)}\n`, 0o640);
  }
  await loadManifest(manifestPath); // re-verifies the copy
  return { dir, manifestPath, sha256, name: manifest.name, version: manifest.version, created };
}

/** Forget a staged model that failed (never the current or previous one). */
export function discardStaged(stateDir: string, staged: StagedModel): void {
  const { current, previous } = readInstalled(stateDir);
  const keep = [current, previous].some((m) => m && path.dirname(m.manifest) === staged.dir);
  if (staged.created && !keep) rmSync(staged.dir, { recursive: true, force: true });
}

/** Make the staged model current; the old current becomes previous; older installs are removed. */
export function commitInstalled(stateDir: string, staged: StagedModel, now = new Date()): InstalledModels {
  const before = readInstalled(stateDir);
  const entry: InstalledModel = {
    manifest: staged.manifestPath,
    sha256: staged.sha256,
    name: staged.name,
    version: staged.version,
    installed_at: now.toISOString(),
  };
  const previous =
    before.current && before.current.sha256 !== staged.sha256 ? before.current : before.previous;
  const next: InstalledModels = { current: entry, previous };
  writeFileAtomic(installedFile(stateDir), `${JSON.stringify(next, null, 2)}\n`, 0o640);
  const keep = new Set([entry, previous].filter((m) => m !== null).map((m) => path.dirname(m.manifest)));
  for (const name of readdirSync(modelsDir(stateDir), { withFileTypes: true })) {
    const p = path.join(modelsDir(stateDir), name.name);
    if (name.isDirectory() && /^[0-9a-f]{16}$/.test(name.name) && !keep.has(p))
      rmSync(p, { recursive: true, force: true });
  }
  return next;
}

/**
 * Reference inputs for the self-test: synthetic 256x256 frames (flat grey, a gradient, noise
 * with a fixed seed) with one centred face box and plausible landmarks. They check that the
 * model runs through the daemon's own crop and tensor path and answers finite scores with
 * probabilities in [0, 1]; they say nothing about its accuracy.
 */
export function selfTestInputs(): { image: ReturnType<typeof makeImage>; face: FaceDetection }[] {
  const face: FaceDetection = {
    box: [78, 68, 100, 120],
    landmarks: [
      [108, 108],
      [148, 108],
      [128, 130],
      [112, 155],
      [144, 155],
    ],
    score: 0.99,
  };
  return [0, 1, 2].map((kind) => ({ image: makeImage(kind), face }));
}

function makeImage(kind: number) {
  const size = 256;
  const buf = Buffer.alloc(size * size * 3);
  let seed = 12345;
  for (let i = 0; i < buf.length; i++) {
    const px = Math.floor(i / 3);
    if (kind === 0) buf[i] = 128;
    else if (kind === 1) buf[i] = (px % size) & 0xff;
    else {
      seed = (seed * 1103515245 + 12345) >>> 0;
      buf[i] = seed >>> 24;
    }
  }
  return new cv.Mat(buf, size, size, cv.CV_8UC3);
}

const PROBABILITY_SCORES = new Set(['p_real', 'p_live']);

/** Runs the reference inputs; throws MODEL_SELF_TEST_FAILED on a non-finite or out-of-range score. */
export async function selfTestModel(model: LivenessModel): Promise<void> {
  for (const [i, { image, face }] of selfTestInputs().entries()) {
    let scores: Record<string, number>;
    try {
      scores = (await model.classify(image, face)).scores;
    } catch (e) {
      throw new KioskError(ErrorCodes.MODEL_SELF_TEST_FAILED, `self-test input ${i}: ${asError(e).message}`, {
        cause: e,
      });
    }
    for (const [k, v] of Object.entries(scores)) {
      const bad =
        !Number.isFinite(v) ||
        ((PROBABILITY_SCORES.has(k) || k.startsWith('p_live_')) && (v < 0 || v > 1)) ||
        (k === 'var' && v < 0);
      if (bad)
        throw new KioskError(
          ErrorCodes.MODEL_SELF_TEST_FAILED,
          `self-test input ${i}: score ${k} = ${v} is out of range`,
          {
            details: { input: i, score: k, value: v },
          },
        );
    }
  }
}
