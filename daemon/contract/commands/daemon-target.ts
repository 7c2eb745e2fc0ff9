/**
 * The commands' view of the running daemon: small adapters over what the Daemon passes in,
 * so the daemon's start (daemon/start-steps.ts) only wires them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configHash } from '../../../config/config-hash.js';
import { loadConfig } from '../../../config/load.js';
import type { Config } from '../../../config/schema.js';
import { ErrorCodes, KioskError } from '../../../core/errors.js';
import { redactDeep } from '../../../core/log.js';
import type { LivenessModel } from '../../liveness/liveness-model.js';
import { applyThresholdOverrides } from '../../liveness/thresholds-store.js';
import { confinedFile, MAX_MANIFEST_BYTES } from '../../models/model-update.js';
import type { AuditEventName } from '../audit/events.js';
import type { HealthPayload } from '../payloads.js';
import type { CommandTarget } from './command-server.js';

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
