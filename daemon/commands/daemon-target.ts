/**
 * The commands' view of the running daemon: small adapters over what the Daemon passes in,
 * so daemon.ts only wires them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import type { AuditEventName } from '../audit/events.js';
import { ErrorCodes, KioskError } from '../errors.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import type { HealthReporter } from '../telemetry/health.js';
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
  health: () => HealthReporter | null;
  updateModel?: (model: string, manifest: string, signature?: string | null) => Promise<unknown>;
  /** Republishes info (thresholds and model are part of what a fleet sees). */
  infoChanged: () => void;
  audit: (event: AuditEventName, details: Record<string, unknown>) => void;
  /** Graceful stop and exit with RESTART_EXIT_CODE. */
  restart: () => void;
  /** request/verify (see CameraPipeline.requestDecision). */
  verify?: (cameraId: string, timeoutMs: number) => Promise<unknown>;
}

export function configHash(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}

/** The liveness model's threshold object, mutable: the verdict functions read it per frame. */
function liveThresholds(model: LivenessModel): Record<string, number> {
  return model.activeThresholds as Record<string, number>;
}

/** Applies the overrides `set_thresholds` persisted for this model (after a restart). */
export function applyStoredThresholds(model: LivenessModel, stateDir: string): Record<string, number> {
  const stored = readThresholds(stateDir, model.info.sha256);
  Object.assign(liveThresholds(model), mergeThresholdUpdate(model.activeThresholds, stored));
  return stored;
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
      return { config: d.config, config_hash: configHash(d.config), thresholds: model().activeThresholds };
    },
    async setThresholds(update) {
      const m = model();
      const before = { ...m.activeThresholds };
      const merged = mergeThresholdUpdate(before, update);
      const changed = Object.fromEntries(Object.entries(merged).filter(([k, v]) => before[k] !== v));
      const stored = { ...readThresholds(d.config.device.state_dir, m.info.sha256), ...update };
      // Persist first: a crash right after answering must not forget what was acknowledged.
      writeThresholds(d.config.device.state_dir, { model_sha256: m.info.sha256, thresholds: stored });
      Object.assign(liveThresholds(m), merged);
      d.audit('config_changed', { what: 'thresholds', before, after: merged });
      d.infoChanged();
      return { thresholds: merged, changed: Object.keys(changed) };
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
    target.updateModel = async ({ model: file, manifest, sha256, signature }) => {
      if (sha256) {
        let declared: unknown;
        try {
          declared = (JSON.parse(readFileSync(manifest, 'utf8')) as { sha256?: unknown }).sha256;
        } catch (cause) {
          throw new KioskError(ErrorCodes.MANIFEST_INVALID, `cannot read manifest ${manifest}`, { cause });
        }
        if (declared !== sha256) {
          throw new KioskError(
            ErrorCodes.MODEL_SHA_MISMATCH,
            'request sha256 differs from the manifest sha256',
          );
        }
      }
      const from = d.liveness()?.info;
      const info = await update(file, manifest, signature ?? null);
      d.audit('model_changed', { from: from ? { name: from.name, sha256: from.sha256 } : null, to: info });
      return info;
    };
  }
  return target;
}
