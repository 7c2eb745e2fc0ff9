/**
 * The commands' view of the running daemon: small adapters over what the Daemon passes in,
 * so daemon.ts only wires them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../../config/load.js';
import type { Config } from '../../../config/schema.js';
import { ErrorCodes, KioskError } from '../../../core/errors.js';
import { redactDeep } from '../../../core/log.js';
import type { LivenessModel } from '../../liveness/liveness-model.js';
import { confinedFile, MAX_MANIFEST_BYTES } from '../../models/model-update.js';
import type { AuditEventName } from '../audit/events.js';
import type { HealthPayload } from '../topics.js';
import type { CommandTarget } from './command-server.js';
import { mergeThresholdUpdate, readThresholds, writeThresholds } from './thresholds-store.js';

/**
 * Exit status of a graceful stop asked for by `restart` or `reload_config` (EX_TEMPFAIL).
 * systemd (`Restart=on-failure`) and pm2 (autorestart) start the daemon again on it.
 */
export const RESTART_EXIT_CODE = 75;

/** Delay between answering a restart and stopping, so the response leaves the device first. */
const RESTART_DELAY_MS = 200;

export interface DaemonInternals {
  config: Config;
  configFile: string | null;
  liveness: () => LivenessModel | null;
  /** The health report (telemetry/health.ts's HealthReporter, a floor above: passed in, not imported). */
  health: () => { snapshot(): Promise<HealthPayload> } | null;
  updateModel?: (model: string, manifest: string, signature?: string | null) => Promise<unknown>;
  /** Republishes info (thresholds and model are part of what a fleet sees). */
  infoChanged: () => void;
  log?: { warn(obj: object, msg: string): void };
  audit: (event: AuditEventName, details: Record<string, unknown>) => void;
  /** Graceful stop and exit with RESTART_EXIT_CODE. */
  restart: () => void;
  /** request/verify (see CommandTarget.verify and CameraPipeline.requestDecision). */
  verify?: (cameraId: string, timeoutMs: number, signed: boolean) => Promise<unknown>;
}

/**
 * The hash a fleet compares between devices: the configuration and the threshold overrides
 * in force (an override changes what the device accepts as much as the file does).
 */
export function configHash(config: Config, overrides: Record<string, number> = {}): string {
  const h = createHash('sha256').update(JSON.stringify(config));
  if (Object.keys(overrides).length) h.update(JSON.stringify({ threshold_overrides: overrides }));
  return h.digest('hex').slice(0, 16);
}

export interface ThresholdsContext {
  model: LivenessModel;
  config: Pick<Config, 'device' | 'liveness'>;
  audit: (event: AuditEventName, details: Record<string, unknown>) => void;
  log?: { warn(obj: object, msg: string): void };
  /** Republishes info (the overrides and config_hash are part of it). */
  infoChanged?: () => void;
}

/**
 * The one path that changes thresholds at run time (the `set_thresholds` command, and local
 * tools): checked against the model's floor, persisted before it takes effect, applied to
 * the running model, logged, audited and announced. Throws KIOSK_E_COMMAND_INVALID for a
 * refused value; nothing changes then.
 */
export function applyThresholdOverrides(
  ctx: ThresholdsContext,
  update: Record<string, number>,
  by: string,
): { thresholds: Record<string, number>; changed: string[] } {
  const { model: m, config } = ctx;
  const before = { ...m.activeThresholds };
  const merged = mergeThresholdUpdate(before, update, {
    floor: m.thresholds.floor,
    allowLooser: config.liveness.allow_looser_thresholds,
  });
  const changed = Object.keys(merged).filter((k) => before[k] !== merged[k]);
  // What is in force plus the update: stored values the floor refused at start are dropped.
  const stored = { ...m.thresholds.overrides(), ...update };
  // Persist first: a crash right after answering must not forget what was acknowledged.
  writeThresholds(config.device.state_dir, { model_sha256: m.info.sha256, thresholds: stored });
  m.thresholds.apply(merged);
  ctx.audit('config_changed', { what: 'thresholds', by, before, after: merged, floor: m.thresholds.floor });
  ctx.log?.warn(
    { before, after: merged, by },
    `liveness thresholds overridden by ${by}: ${changed.map((k) => `${k}=${merged[k]}`).join(', ') || 'no change'}`,
  );
  ctx.infoChanged?.();
  return { thresholds: merged, changed };
}

/**
 * Applies the overrides `set_thresholds` persisted for this model (after a restart). Stored
 * values that the floor refuses (a file edited by hand, or written before the floor existed)
 * are not applied: the model's own thresholds stay in force, and the refusal is returned.
 */
export function applyStoredThresholds(
  model: LivenessModel,
  config: Pick<Config, 'device' | 'liveness'>,
): { applied: Record<string, number>; refused: string | null } {
  const floor = model.thresholds.floor;
  const stored = readThresholds(config.device.state_dir, model.info.sha256);
  try {
    const merged = mergeThresholdUpdate(model.activeThresholds, stored, {
      floor,
      allowLooser: config.liveness.allow_looser_thresholds,
    });
    model.thresholds.apply(merged);
    return { applied: stored, refused: null };
  } catch (err) {
    return { applied: {}, refused: err instanceof Error ? err.message : String(err) };
  }
}

export function daemonCommandTarget(d: DaemonInternals): CommandTarget {
  const model = (): LivenessModel => {
    const m = d.liveness();
    if (!m) throw new KioskError(ErrorCodes.COMMAND_FAILED, 'no liveness model loaded');
    return m;
  };
  const target: CommandTarget = {
    async healthCheck() {
      const h = d.health();
      if (!h) throw new KioskError(ErrorCodes.COMMAND_FAILED, 'health reporter not running');
      return h.snapshot();
    },
    getConfig() {
      const m = model();
      const overrides = m.thresholds.overrides();
      return {
        config: redactDeep(d.config),
        config_hash: configHash(d.config, overrides),
        thresholds: m.activeThresholds,
        threshold_overrides: overrides,
      };
    },
    async setThresholds(update) {
      return applyThresholdOverrides(
        {
          model: model(),
          config: d.config,
          audit: d.audit,
          ...(d.log ? { log: d.log } : {}),
          infoChanged: d.infoChanged,
        },
        update,
        'set_thresholds command',
      );
    },
    async reloadConfig() {
      // The whole pipeline is built from the config: apply a new one by a supervised restart.
      const { config } = loadConfig(d.configFile);
      const from = configHash(d.config);
      const to = configHash(config);
      if (from === to) return { changed: false, config_hash: to };
      d.audit('config_changed', { what: 'config_file', from, to });
      setTimeout(d.restart, RESTART_DELAY_MS).unref();
      return { changed: true, config_hash: to, restarting: true, exit_code: RESTART_EXIT_CODE };
    },
    restart() {
      d.audit('daemon_stopped', { why: 'restart command', exit_code: RESTART_EXIT_CODE });
      setTimeout(d.restart, RESTART_DELAY_MS).unref();
    },
  };
  if (d.verify) target.verify = d.verify;
  if (d.updateModel) {
    const update = d.updateModel;
    target.updateModel = async ({ model: file, manifest, sha256, manifest_sha256, signature }) => {
      const mu = d.config.model_update;
      const dir = mu.incoming_dir ?? path.join(d.config.device.state_dir, 'incoming');
      // Confined and size-checked before a byte is read; refusals name nothing.
      const modelFile = confinedFile(dir, file, Math.round(mu.max_model_mb * 2 ** 20), 'model');
      const manifestFile = confinedFile(dir, manifest, MAX_MANIFEST_BYTES, 'manifest');
      const manifestBytes = readFileSync(manifestFile);
      if (mu.public_key_file === null) {
        // No model key: the fleet-signed request is what vouches for the files, so it must
        // name both hashes (the manifest sets purpose and thresholds).
        if (!sha256 || !manifest_sha256) {
          throw new KioskError(
            ErrorCodes.COMMAND_INVALID,
            'model_update: without model_update.public_key_file the request must carry sha256 and manifest_sha256',
          );
        }
        if (createHash('sha256').update(manifestBytes).digest('hex') !== manifest_sha256) {
          throw new KioskError(ErrorCodes.MODEL_SHA_MISMATCH, 'the manifest differs from manifest_sha256');
        }
      }
      if (sha256) {
        let declared: unknown;
        try {
          declared = (JSON.parse(manifestBytes.toString('utf8')) as { sha256?: unknown }).sha256;
        } catch (cause) {
          throw new KioskError(ErrorCodes.MANIFEST_INVALID, 'the manifest is not JSON', { cause });
        }
        if (declared !== sha256) {
          throw new KioskError(
            ErrorCodes.MODEL_SHA_MISMATCH,
            'request sha256 differs from the manifest sha256',
          );
        }
      }
      const from = d.liveness()?.info;
      const info = await update(modelFile, manifestFile, signature ?? null);
      d.audit('model_changed', { from: from ? { name: from.name, sha256: from.sha256 } : null, to: info });
      return info;
    };
  }
  return target;
}
