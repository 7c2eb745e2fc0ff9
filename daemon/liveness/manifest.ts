/**
 * Model manifests: the JSON file next to every model that says what it is, how to feed it and
 * how to read it. Loading a manifest verifies the model file (present, sha256) before any
 * session is created, so a corrupt or swapped model refuses to start with a clear error.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { DEFAULT_MAX_MODEL_BYTES, readCheckedFileAsync } from '../../core/file-rule.js';
import { formatIssues } from '../../core/zod-issues.js';

const point = z.tuple([z.number(), z.number()]);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256');

export const inputSchema = z.strictObject({
  name: z.string().min(1),
  shape: z.tuple([z.literal(1), z.literal(3), z.number().int().positive(), z.number().int().positive()]),
  layout: z.literal('NCHW'),
  dtype: z.literal('float32'),
  color: z.enum(['RGB', 'BGR']),
  normalize: z.strictObject({
    mean: z.array(z.number()).length(3),
    std: z.array(z.number().positive()).length(3),
  }),
});

export const cropSchema = z.discriminatedUnion('method', [
  z.strictObject({
    method: z.literal('similarity'),
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    template: z.array(point).length(5),
    template_name: z.string().optional(),
    border: z.literal('constant'),
    border_value: z.literal(0),
    interpolation: z.literal('linear'),
  }),
  z.strictObject({
    method: z.literal('scaled_box'),
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    scale: z.number().positive(),
    interpolation: z.literal('linear'),
  }),
]);

const common = {
  schema: z.literal(1),
  name: z.string().min(1),
  version: z.string().min(1),
  purpose: z.enum(['production', 'demo', 'untrained', 'reference']),
  description: z.string().optional(),
  license: z.string().optional(),
  provenance: z.record(z.string(), z.unknown()).optional(),
};

const fileFields = {
  file: z.string().min(1),
  sha256,
  input: inputSchema,
  crop: cropSchema,
  variants: z.record(z.string(), z.strictObject({ file: z.string().min(1), sha256 })).optional(),
};

export const fghvManifestSchema = z.strictObject({
  ...common,
  ...fileFields,
  family: z.literal('fghv'),
  outputs: z.strictObject({
    p_real: z.string(),
    var: z.string(),
    delta_kl: z.string(),
    kl_real: z.string(),
    kl_attack: z.string(),
  }),
  thresholds: z.strictObject({ p_real_min: z.number(), var_max: z.number(), delta_kl_max: z.number() }),
});

const softmaxThresholds = z
  .strictObject({ live_min: z.number().min(0).max(1), spoof_max: z.number().min(0).max(1) })
  .refine((t) => t.spoof_max <= t.live_min, 'spoof_max must not exceed live_min');

export const softmaxManifestSchema = z.strictObject({
  ...common,
  ...fileFields,
  family: z.literal('softmax'),
  outputs: z.strictObject({
    name: z.string(),
    classes: z.number().int().min(2),
    live_index: z.number().int().min(0),
    /** false when the graph already ends in a softmax. */
    apply_softmax: z.boolean(),
  }),
  thresholds: softmaxThresholds,
});

export const ensembleManifestSchema = z.strictObject({
  ...common,
  family: z.literal('ensemble'),
  /** Member manifests (softmax family), relative to this manifest. */
  members: z.array(z.string().min(1)).min(2),
  /** How member live probabilities combine: the mean (equivalent to Silent-Face's sum of softmax outputs). */
  combine: z.literal('mean'),
  thresholds: softmaxThresholds,
});

export const manifestSchema = z.discriminatedUnion('family', [
  fghvManifestSchema,
  softmaxManifestSchema,
  ensembleManifestSchema,
]);

export type FghvManifest = z.infer<typeof fghvManifestSchema>;
export type SoftmaxManifest = z.infer<typeof softmaxManifestSchema>;
export type EnsembleManifest = z.infer<typeof ensembleManifestSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
export type SingleModelManifest = FghvManifest | SoftmaxManifest;

/** A manifest with its files resolved and verified. */
export type LoadedModel =
  | { manifest: SingleModelManifest; manifestPath: string; modelPath: string }
  | { manifest: EnsembleManifest; manifestPath: string; members: LoadedModel[] };

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Manifests are small JSON documents. */
export const MAX_MANIFEST_BYTES = 1 << 20;

async function readJson(file: string): Promise<unknown> {
  // A regular file of at most 1 MiB, checked before reading (core/file-rule.ts).
  const text = (
    await readCheckedFileAsync(file, {
      what: 'model manifest',
      maxBytes: MAX_MANIFEST_BYTES,
      code: ErrorCodes.MANIFEST_INVALID,
      missingCode: ErrorCodes.MANIFEST_NOT_FOUND,
    })
  ).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new KioskError(
      ErrorCodes.MANIFEST_INVALID,
      `model manifest ${file} is not valid JSON: ${(e as Error).message}`,
      {
        cause: e,
        details: { path: file },
      },
    );
  }
}

/**
 * An FGHV export carries no thresholds until it is calibrated (`python3 -m fghv calibrate`
 * sets all three): refuse it with a message that says so, rather than run with made-up values.
 */
function refuseUncalibrated(raw: unknown, source: string): void {
  if (typeof raw !== 'object' || raw === null) return;
  const m = raw as Record<string, unknown>;
  if (m.family !== 'fghv') return;
  const t = m.thresholds as Record<string, unknown> | undefined;
  const missing = ['p_real_min', 'var_max', 'delta_kl_max'].filter((k) => typeof t?.[k] !== 'number');
  if (missing.length === 0) return;
  throw new KioskError(
    ErrorCodes.MANIFEST_INVALID,
    `model manifest ${source} is not calibrated (no ${missing.join(', ')}): an FGHV model needs thresholds fitted on labelled data; run \`python3 -m fghv calibrate --manifest ${source} ...\` (models/fghv/README.md) before using it`,
    { details: { path: source, reason: 'uncalibrated', missing } },
  );
}

export function parseManifest(raw: unknown, source: string): Manifest {
  refuseUncalibrated(raw, source);
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new KioskError(
      ErrorCodes.MANIFEST_INVALID,
      `model manifest ${source} is invalid:\n  ${issues.join('\n  ')}`,
      {
        details: { path: source, issues },
      },
    );
  }
  return parsed.data;
}

/**
 * Read, validate and verify a manifest (recursively for ensembles). Manifest and model are
 * read by the file rule (core/file-rule.ts): regular files, the model of at most maxModelBytes.
 */
export async function loadManifest(
  manifestPath: string,
  depth = 0,
  maxModelBytes = DEFAULT_MAX_MODEL_BYTES,
): Promise<LoadedModel> {
  const abs = path.resolve(manifestPath);
  const manifest = parseManifest(await readJson(abs), abs);
  if (manifest.family === 'ensemble') {
    if (depth > 0) throw new KioskError(ErrorCodes.MANIFEST_INVALID, `${abs}: ensembles cannot be nested`);
    const members: LoadedModel[] = [];
    for (const m of manifest.members) {
      const member = await loadManifest(path.resolve(path.dirname(abs), m), depth + 1, maxModelBytes);
      if (member.manifest.family !== 'softmax') {
        throw new KioskError(
          ErrorCodes.MANIFEST_INVALID,
          `${abs}: ensemble member ${m} must be of family softmax`,
        );
      }
      members.push(member);
    }
    return { manifest, manifestPath: abs, members };
  }
  const modelPath = path.resolve(path.dirname(abs), manifest.file);
  const bytes = await readCheckedFileAsync(modelPath, {
    what: `model file (from ${abs})`,
    maxBytes: maxModelBytes,
    code: ErrorCodes.MODEL_CORRUPT,
    missingCode: ErrorCodes.MODEL_NOT_FOUND,
  });
  const actual = sha256Hex(bytes);
  if (actual !== manifest.sha256) {
    throw new KioskError(
      ErrorCodes.MODEL_SHA_MISMATCH,
      `model file ${modelPath} has sha256 ${actual}, but its manifest ${abs} says ${manifest.sha256}: the file is corrupt, truncated or not the model the manifest describes`,
      { details: { path: modelPath, manifest: abs, expected: manifest.sha256, actual } },
    );
  }
  return { manifest, manifestPath: abs, modelPath };
}
