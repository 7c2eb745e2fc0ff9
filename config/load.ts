/**
 * Loading the configuration: YAML file (optional) -> environment overrides -> schema
 * validation with every error listed by path -> relative paths resolved.
 *
 * Relative paths in a config file are relative to that file's directory; relative paths in
 * the defaults and in environment overrides are relative to the package root, so the
 * embedded demo works from any working directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ErrorCodes, KioskError } from '../daemon/errors.js';
import { formatIssues } from '../daemon/zod-issues.js';
import { type Config, configSchema } from './schema.js';

/** The package root (the directory holding package.json), from config/ or dist/config/. */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
})();

export const ENV_PREFIX = 'FGHV_';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function parseEnvValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/**
 * Environment overrides: `FGHV_<SECTION>__<KEY>=value` (double underscore between levels,
 * case-insensitive), e.g. `FGHV_MQTT__URL=mqtt://broker:1883`, `FGHV_LOG__LEVEL=debug`,
 * `FGHV_CAMERAS='[{"kind":"v4l2","source":"/dev/video0"}]'`. Values are JSON when they parse
 * as JSON, strings otherwise. FGHV_MQTT_PASSWORD (single underscore) is a secret, not config.
 */
export function envOverrides(env: NodeJS.ProcessEnv): { overrides: Record<string, Json>; keys: string[] } {
  const overrides: Record<string, Json> = {};
  const keys: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const rest = name.slice(ENV_PREFIX.length);
    if (rest === 'MQTT_PASSWORD' || rest === 'CONFIG') continue;
    const pathParts = rest.toLowerCase().split('__');
    if (pathParts.some((p) => p === '')) continue;
    let node = overrides as Record<string, Json>;
    for (const part of pathParts.slice(0, -1)) {
      const next = node[part];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
      node = node[part] as Record<string, Json>;
    }
    node[pathParts[pathParts.length - 1] as string] = parseEnvValue(value);
    keys.push(name);
  }
  return { overrides, keys };
}

function deepMerge(base: Json, over: Json): Json {
  if (
    typeof base === 'object' &&
    base &&
    !Array.isArray(base) &&
    typeof over === 'object' &&
    over &&
    !Array.isArray(over)
  ) {
    const out: Record<string, Json> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k] as Json, v) : v;
    return out;
  }
  return over;
}

function resolveFrom(base: string, p: string | null | undefined): string | null | undefined {
  if (typeof p !== 'string' || p === '' || path.isAbsolute(p)) return p;
  return path.resolve(base, p);
}

/** Resolve path-valued fields of a raw (pre-validation) object against `base`, in place. */
function resolveRawPaths(raw: Record<string, Json>, base: string): void {
  const section = (k: string) =>
    typeof raw[k] === 'object' && raw[k] && !Array.isArray(raw[k]) ? (raw[k] as Record<string, Json>) : null;
  const dev = section('device');
  if (dev && typeof dev.state_dir === 'string') dev.state_dir = resolveFrom(base, dev.state_dir) as string;
  const mqtt = section('mqtt');
  if (mqtt && typeof mqtt.password_file === 'string')
    mqtt.password_file = resolveFrom(base, mqtt.password_file) as string;
  const status = section('status');
  if (status && typeof status.token_file === 'string') status.token_file = resolveFrom(base, status.token_file) as string;
  const det = section('detector');
  if (det && typeof det.model === 'string') det.model = resolveFrom(base, det.model) as string;
  const live = section('liveness');
  if (live && typeof live.manifest === 'string') live.manifest = resolveFrom(base, live.manifest) as string;
  if (Array.isArray(raw.cameras)) {
    for (const cam of raw.cameras) {
      if (
        cam &&
        typeof cam === 'object' &&
        !Array.isArray(cam) &&
        (cam.kind === undefined || cam.kind === 'file')
      ) {
        if (typeof cam.source === 'string') cam.source = resolveFrom(base, cam.source) as string;
      }
    }
  }
}

function resolveDefaults(cfg: Config): Config {
  const r = (p: string) => resolveFrom(packageRoot, p) as string;
  return {
    ...cfg,
    device: { ...cfg.device, state_dir: r(cfg.device.state_dir) },
    mqtt: { ...cfg.mqtt, password_file: cfg.mqtt.password_file === null ? null : r(cfg.mqtt.password_file) },
    detector: { ...cfg.detector, model: cfg.detector.model === null ? null : r(cfg.detector.model) },
    status: { ...cfg.status, token_file: cfg.status.token_file === null ? null : r(cfg.status.token_file) },
    liveness: { ...cfg.liveness, manifest: r(cfg.liveness.manifest) },
    cameras: cfg.cameras.map((c) => (c.kind === 'file' ? { ...c, source: r(c.source) } : c)),
  };
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or null for the embedded defaults. */
  file: string | null;
  /** Environment variables that overrode the file. */
  envKeys: string[];
}

/** Parse and validate a config object; throws KIOSK_E_CONFIG_INVALID listing every error. */
export function validateConfig(raw: unknown, source: string): Config {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new KioskError(
      ErrorCodes.CONFIG_INVALID,
      `configuration ${source} is invalid:\n  ${issues.join('\n  ')}`,
      {
        details: { source, issues },
      },
    );
  }
  // Rules across keys, which the per-key schema cannot express.
  const issues: string[] = [];
  const ids = parsed.data.cameras.map((c) => c.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) issues.push(`cameras: duplicate camera id "${dup}"`);
  const d = parsed.data.decision;
  if (d.min_live > d.frames)
    issues.push(
      `decision.min_live: ${d.min_live} exceeds decision.frames (${d.frames}): nothing could ever be accepted`,
    );
  if (d.min_spoof > d.frames)
    issues.push(`decision.min_spoof: ${d.min_spoof} exceeds decision.frames (${d.frames})`);
  const q = parsed.data.quality;
  if (q.min_brightness >= q.max_brightness)
    issues.push('quality.min_brightness: must be below quality.max_brightness');
  if (issues.length) {
    throw new KioskError(
      ErrorCodes.CONFIG_INVALID,
      `configuration ${source} is invalid:\n  ${issues.join('\n  ')}`,
      {
        details: { source, issues },
      },
    );
  }
  return parsed.data;
}

export function parseConfigText(text: string, source: string): unknown {
  try {
    const doc = YAML.parse(text, { prettyErrors: true, uniqueKeys: true });
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
      throw new Error('the top level must be a mapping (key: value pairs)');
    }
    return doc ?? {};
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CONFIG_PARSE,
      `configuration ${source} is not valid YAML: ${(e as Error).message}`,
      {
        cause: e,
        details: { source },
      },
    );
  }
}

export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: Record<string, Json> = {};
  let abs: string | null = null;
  if (file) {
    abs = path.resolve(file);
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (e) {
      throw new KioskError(
        ErrorCodes.CONFIG_NOT_FOUND,
        `configuration file ${abs} cannot be read: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    raw = parseConfigText(text, abs) as Record<string, Json>;
    resolveRawPaths(raw, path.dirname(abs));
  }
  const { overrides, keys } = envOverrides(env);
  const merged = deepMerge(raw, overrides) as Record<string, Json>;
  const source = [
    abs ?? 'embedded defaults',
    ...(keys.length ? [`environment (${keys.join(', ')})`] : []),
  ].join(' + ');
  return { config: resolveDefaults(validateConfig(merged, source)), file: abs, envKeys: keys };
}
