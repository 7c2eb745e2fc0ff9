/**
 * The files a configuration names (detector model, liveness manifest, password, TLS and key
 * files): which of them are missing on this machine. `config check` and `doctor` both report
 * them, so a config that `run` would refuse at start (KIOSK_E_MODEL_NOT_FOUND, an unreadable
 * password file) is caught before it is deployed; a missing catalogue model comes with the
 * `fghv-kiosk model fetch` command that installs it. Paths are those of a loaded config
 * (relative paths already resolved by config/load.ts). Reads nothing but `existsSync`.
 */
import { existsSync } from 'node:fs';
import { packageRoot } from '../config/load.js';
import { fetchCommand, modelNameOf, modelsDirOf } from '../config/models.js';
import type { Config } from '../config/schema.js';
import { ErrorCodes, KioskError } from '../core/errors.js';
import { defaultDetectorModel } from './detect/index.js';
import { activeManifest } from './models/model-install.js';

export interface NamedFile {
  /** The config key, dotted (`detector.model`, `mqtt.tls.ca_file`). */
  key: string;
  path: string;
  /** The catalogue model this path stands for (installed by `fghv-kiosk model fetch`), if any. */
  model?: string;
}

/** What to tell a user about a missing file: the exact fetch command when it is a catalogue model. */
export function missingHint(f: NamedFile, configFile: string | null): string {
  return f.model ? ` (not installed: run \`${fetchCommand([f.model], configFile ?? 'FILE')}\`)` : '';
}

/** Every file the config refers to (null keys skipped; the detector's default model included). */
export function referencedFiles(config: Config, repoRoot = packageRoot): NamedFile[] {
  const files: NamedFile[] = [
    {
      key: 'detector.model',
      path: config.detector.model ?? defaultDetectorModel(config.detector.name, repoRoot),
    },
    { key: 'liveness.manifest', path: config.liveness.manifest },
  ];
  const optional: [string, string | null][] = [
    ['mqtt.password_file', config.mqtt.password_file],
    ['mqtt.tls.ca_file', config.mqtt.tls.ca_file],
    ['mqtt.tls.cert_file', config.mqtt.tls.cert_file],
    ['mqtt.tls.key_file', config.mqtt.tls.key_file],
    ['status.token_file', config.status.enabled ? config.status.token_file : null],
    ['model_update.public_key_file', config.model_update.public_key_file],
  ];
  for (const [key, p] of optional) if (p !== null) files.push({ key, path: p });
  const dir = modelsDirOf(config);
  for (const f of files.slice(0, 2)) {
    const model = modelNameOf(f.path, dir);
    if (model) f.model = model;
  }
  return files;
}

export function missingFiles(config: Config, repoRoot = packageRoot): NamedFile[] {
  return referencedFiles(config, repoRoot).filter((f) => !existsSync(f.path));
}

/**
 * The start's refusal when a catalogue model the config names is not installed (null when all
 * are, or when a model installed with `model install` replaces the configured manifest).
 */
export function uninstalledModels(config: Config, configFile: string | null): KioskError | null {
  const replaced =
    activeManifest(config.device.state_dir, config.liveness.manifest) !== config.liveness.manifest;
  const missing = missingFiles(config).filter(
    (f) => f.model && !(replaced && f.key === 'liveness.manifest'),
  ) as (NamedFile & { model: string })[];
  if (!missing.length) return null;
  return new KioskError(
    ErrorCodes.MODEL_NOT_FOUND,
    `the configuration names models that are not installed (${missing.map((m) => `${m.key}: ${m.model}`).join(', ')}); install them with \`${fetchCommand(
      missing.map((m) => m.model),
      configFile ?? 'FILE',
    )}\` (the daemon never downloads)`,
    { details: { missing } },
  );
}
