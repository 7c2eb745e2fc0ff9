/**
 * The files a configuration names (detector model, liveness manifest, password, TLS and key
 * files) and the file rule each is read by (core/file-rule.ts: a regular file of at most a
 * stated size). `config check` and `doctor` both report the files that break it, so a config
 * that `run` would refuse at start (KIOSK_E_MODEL_NOT_FOUND, an unreadable password file,
 * `/dev/zero` as a token file) is caught before it is deployed. Paths are those of a loaded
 * config (relative paths already resolved by config/load.ts). Reads no file: it stats them.
 */
import { packageRoot } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ErrorCodes } from '../core/errors.js';
import { type FileRule, fileProblem, MAX_SMALL_FILE_BYTES } from '../core/file-rule.js';
import { defaultDetectorModel } from './detect/index.js';
import { MAX_MANIFEST_BYTES } from './liveness/manifest.js';

export interface NamedFile {
  /** The config key, dotted (`detector.model`, `mqtt.tls.ca_file`). */
  key: string;
  path: string;
  /** The rule the daemon reads it by. */
  rule: FileRule;
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
  return files;
}

/** The named files that break their rule (missing, not a regular file, too large), and why. */
export function fileProblems(config: Config, repoRoot = packageRoot): (NamedFile & { problem: string })[] {
  return referencedFiles(config, repoRoot).flatMap((f) => {
    const problem = fileProblem(f.path, f.rule);
    return problem === null ? [] : [{ ...f, problem }];
  });
}
