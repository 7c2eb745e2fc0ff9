/**
 * Loading the configuration: YAML file (optional) -> environment overrides -> schema
 * validation with every error listed by path -> relative paths resolved.
 *
 * Relative paths in a config file are relative to that file's directory; relative paths in
 * the defaults and in environment overrides are relative to the package root, so the
 * embedded demo works from any working directory.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ErrorCodes, KioskError } from '../core/errors.js';
import { isLoopbackHost } from '../core/net.js';
import { formatIssues } from '../core/zod-issues.js';
import { isModelName, modelRef, modelsDirOf } from './models.js';
import { packageRoot } from './package-root.js';
import { type Config, configSchema } from './schema.js';

export { packageRoot } from './package-root.js';

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

/** Every config key that holds a file-system path (camera sources are handled by kind). */
const PATH_KEYS: readonly (readonly string[])[] = [
  ['device', 'state_dir'],
  ['mqtt', 'password_file'],
  ['mqtt', 'tls', 'ca_file'],
  ['mqtt', 'tls', 'cert_file'],
  ['mqtt', 'tls', 'key_file'],
  ['detector', 'model'],
  ['liveness', 'manifest'],
  ['status', 'token_file'],
  ['model_update', 'public_key_file'],
  ['model_update', 'incoming_dir'],
  ['models', 'dir'],
  ['models', 'mirror'],
];

/** Keys that take a catalogue model name as well as a path (config/models.ts). */
const MODEL_KEYS = new Set(['detector.model', 'liveness.manifest']);

/** A value that is not a file-system path: a catalogue model name, or a mirror URL. */
function notAPath(key: string, value: string): boolean {
  if (MODEL_KEYS.has(key)) return isModelName(value);
  if (key === 'models.mirror') return /^https?:\/\//i.test(value);
  return false;
}

/** Camera kinds whose `source` is a file path (not a device, pipeline, URL or ffmpeg input). */
const FILE_SOURCE_KINDS = new Set([undefined, 'file']);

/**
 * Resolve every relative path in a config-shaped object against `base`, in place. Works on
 * raw input (before validation: missing sections are skipped) and on validated configs.
 */
function resolvePaths(obj: Record<string, unknown>, base: string): void {
  for (const keys of PATH_KEYS) {
    let node: unknown = obj;
    for (const k of keys.slice(0, -1))
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined;
    const last = keys[keys.length - 1] as string;
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      const n = node as Record<string, unknown>;
      if (typeof n[last] === 'string' && !notAPath(keys.join('.'), n[last] as string))
        n[last] = resolveFrom(base, n[last] as string);
    }
  }
  if (Array.isArray(obj.cameras)) {
    for (const cam of obj.cameras as unknown[]) {
      if (cam && typeof cam === 'object' && !Array.isArray(cam)) {
        const c = cam as Record<string, unknown>;
        if (FILE_SOURCE_KINDS.has(c.kind as string | undefined) && typeof c.source === 'string') {
          c.source = resolveFrom(base, c.source);
        }
      }
    }
  }
}

function resolveDefaults(cfg: Config): Config {
  const copy = structuredClone(cfg);
  resolvePaths(copy as unknown as Record<string, unknown>, packageRoot);
  return resolveModelNames(copy);
}

/**
 * Catalogue names become the paths of the installed models (under models.dir), so everything
 * after loading sees paths; `detector.name: yunet` with no model uses the installed yunet-s.
 * Whether the files exist is checked where paths are (config check, doctor, start).
 */
export function resolveModelNames(cfg: Config): Config {
  const dir = modelsDirOf(cfg);
  cfg.liveness.manifest = modelRef(cfg.liveness.manifest, 'liveness', dir);
  if (cfg.detector.model !== null) cfg.detector.model = modelRef(cfg.detector.model, 'detector', dir);
  else if (cfg.detector.name === 'yunet') cfg.detector.model = modelRef('yunet-s', 'detector', dir);
  return cfg;
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
  const m = parsed.data.mqtt;
  if (m.url === null && !isLoopbackHost(m.embedded_host))
    issues.push(
      `mqtt.embedded_host: ${m.embedded_host} is not a loopback address: the embedded broker has no authentication, so anyone on the network could command the device and forge its topics; use 127.0.0.1, or an external broker (mqtt.url) with ACLs and TLS`,
    );
  if (Array.isArray(m.url)) {
    // Failover must not downgrade: a list either all TLS or all plain.
    const secure = m.url.map((u) => /^(mqtts|wss):/i.test(u));
    if (secure.some((s) => s) && !secure.every((s) => s))
      issues.push(
        'mqtt.url: the list mixes TLS (mqtts://, wss://) and plain brokers: a failover would send decisions and credentials unencrypted; list only TLS brokers, or only plain ones',
      );
  }
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

/** A configuration is a few kilobytes; anything larger (or not a regular file) is refused unread. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** The text of a configuration file; KIOSK_E_CONFIG_NOT_FOUND when it cannot be read. */
export function readConfigFile(abs: string): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CONFIG_NOT_FOUND,
      `configuration file ${abs} cannot be read: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (!st.isFile() || st.size > MAX_CONFIG_BYTES) {
    throw new KioskError(
      ErrorCodes.CONFIG_INVALID,
      `configuration file ${abs} must be a regular file of at most ${MAX_CONFIG_BYTES} bytes`,
      { details: { source: abs } },
    );
  }
  try {
    return readFileSync(abs, 'utf8');
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CONFIG_NOT_FOUND,
      `configuration file ${abs} cannot be read: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: Record<string, Json> = {};
  let abs: string | null = null;
  if (file) {
    abs = path.resolve(file);
    const text = readConfigFile(abs);
    raw = parseConfigText(text, abs) as Record<string, Json>;
    resolvePaths(raw, path.dirname(abs));
  }
  const { overrides, keys } = envOverrides(env);
  const merged = deepMerge(raw, overrides) as Record<string, Json>;
  const source = [
    abs ?? 'embedded defaults',
    ...(keys.length ? [`environment (${keys.join(', ')})`] : []),
  ].join(' + ');
  return { config: resolveDefaults(validateConfig(merged, source)), file: abs, envKeys: keys };
}
