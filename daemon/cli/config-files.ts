/**
 * The files a configuration names (detector model, liveness manifest, password, TLS and key
 * files) and the file rule each is read by (core/file-rule.ts: a regular file of at most a
 * stated size). `config check` and `doctor` both report the files that break it, so a config
 * that `run` would refuse at start (KIOSK_E_MODEL_NOT_FOUND, an unreadable password file,
 * `/dev/zero` as a token file) is caught before it is deployed; a missing catalogue model comes
 * with the `fghv-kiosk model fetch` command that installs it. Paths are those of a loaded config
 * (relative paths already resolved by config/load.ts). Reads no file: it stats them.
 */
import { existsSync } from 'node:fs';
import { packageRoot } from '../../config/load.js';
import { fetchCommand, modelNameOf, modelsDirOf } from '../../config/models.js';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { type FileRule, fileProblem, MAX_SMALL_FILE_BYTES } from '../../core/file-rule.js';
import { defaultDetectorModel } from '../detect/index.js';
import { MAX_MANIFEST_BYTES } from '../liveness/manifest.js';
import { activeManifest } from '../models/model-install.js';

export interface NamedFile {
  /** The config key, dotted (`detector.model`, `mqtt.tls.ca_file`). */
  key: string;
  path: string;
  /** The rule the daemon reads it by. */
  rule: FileRule;
  /** The catalogue model this path stands for (installed by `fghv-kiosk model fetch`), if any. */
  model?: string;
}

/** What to tell a user about a missing file: the exact fetch command when it is a catalogue model. */
export function missingHint(f: NamedFile, configFile: string | null): string {
  return f.model ? ` (not installed: run \`${fetchCommand([f.model], configFile ?? 'FILE')}\`)` : '';
}

/** Model files (detector and liveness): at most `model_update.max_model_mb`. */
export function modelFileRule(config: Pick<Config, 'model_update'>, what: string): FileRule {
  return {
    what,
    maxBytes: Math.round(config.model_update.max_model_mb * 2 ** 20),
    code: ErrorCodes.MODEL_CORRUPT,
    missingCode: ErrorCodes.MODEL_NOT_FOUND,
  };
}

/** Every file the config refers to (null keys skipped; the detector's default model included). */
export function referencedFiles(config: Config, repoRoot = packageRoot): NamedFile[] {
  const small = (key: string): FileRule => ({
    what: key,
    maxBytes: MAX_SMALL_FILE_BYTES,
    code: ErrorCodes.CONFIG_INVALID,
  });
  const files: NamedFile[] = [
    {
      key: 'detector.model',
      path: config.detector.model ?? defaultDetectorModel(config.detector.name, repoRoot),
      rule: modelFileRule(config, 'detector.model'),
    },
    {
      key: 'liveness.manifest',
      path: config.liveness.manifest,
      rule: {
        what: 'liveness.manifest',
        maxBytes: MAX_MANIFEST_BYTES,
        code: ErrorCodes.MANIFEST_INVALID,
        missingCode: ErrorCodes.MANIFEST_NOT_FOUND,
      },
    },
  ];
  const optional: [string, string | null][] = [
    ['mqtt.password_file', config.mqtt.password_file],
    ['mqtt.tls.ca_file', config.mqtt.tls.ca_file],
    ['mqtt.tls.cert_file', config.mqtt.tls.cert_file],
    ['mqtt.tls.key_file', config.mqtt.tls.key_file],
    ['status.token_file', config.status.enabled ? config.status.token_file : null],
    ['model_update.public_key_file', config.model_update.public_key_file],
  ];
  for (const [key, p] of optional) if (p !== null) files.push({ key, path: p, rule: small(key) });
  const dir = modelsDirOf(config);
  for (const f of files.slice(0, 2)) {
    const model = modelNameOf(f.path, dir);
    if (model) f.model = model;
  }
  return files;
}

/** The named files that break their rule (missing, not a regular file, too large), and why. */
export function fileProblems(config: Config, repoRoot = packageRoot): (NamedFile & { problem: string })[] {
  return referencedFiles(config, repoRoot).flatMap((f) => {
    const problem = fileProblem(f.path, f.rule);
    return problem === null ? [] : [{ ...f, problem }];
  });
}

/**
 * The start's refusal when a catalogue model the config names is not installed (null when all
 * are, or when a model installed with `model install` replaces the configured manifest).
 */
export function uninstalledModels(config: Config, configFile: string | null): KioskError | null {
  const replaced =
    activeManifest(config.device.state_dir, config.liveness.manifest) !== config.liveness.manifest;
  const missing = referencedFiles(config).filter(
    (f) => f.model && !existsSync(f.path) && !(replaced && f.key === 'liveness.manifest'),
  ) as (NamedFile & { model: string })[];
  if (!missing.length) return null;
  return new KioskError(
    ErrorCodes.MODEL_NOT_FOUND,
    `the configuration names models that are not installed (${missing.map((m) => `${m.key}: ${m.model}`).join(', ')}); install them with \`${fetchCommand(
      missing.map((m) => m.model),
      configFile ?? 'FILE',
    )}\` (the daemon never downloads)`,
    { details: { missing: missing.map(({ key, path: p, model }) => ({ key, path: p, model })) } },
  );
}
