/**
 * Applying a drill's proposed thresholds: only on the installer's request, on the device, and
 * through the same path as the `set_thresholds` command (liveness/thresholds-store.ts:
 * range-checked, persisted in <state_dir>/thresholds.json for this model, audited as
 * config_changed). The values before are kept in the drill (applied.json), so `--revert` puts
 * them back the same way.
 *
 * `setThresholdsLocally` is the one seam to that path (`applyThresholdOverrides`): a drill's
 * proposal that is looser than the model's own thresholds is refused unless the local config
 * sets `liveness.allow_looser_thresholds`, as for the command.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { readCheckedText } from '../../core/file-rule.js';
import { AuditStore } from '../contract/audit/audit-store.js';
import { buildAuditEvent } from '../contract/audit/events.js';
import { applyThresholdOverrides } from '../liveness/thresholds-store.js';
import { openInferenceStack } from '../models/inference-stack.js';
import { resolveDeviceId } from '../mqtt/device-id.js';
import { MAX_DRILL_FILE_BYTES } from './record.js';
import type { DrillReport } from './report.js';

export interface ApplyResult {
  before: Record<string, number>;
  thresholds: Record<string, number>;
  changed: string[];
}

/** set_thresholds, run by the installer on the device, audited with the drill it came from. */
export async function setThresholdsLocally(
  config: Config,
  update: Record<string, number>,
  context: { drill_id: string; revert: boolean; expectModelSha256: string },
): Promise<ApplyResult> {
  // The model in use, with the stored overrides applied as the daemon loads it.
  const stack = await openInferenceStack({ liveness: { device: config, log: null } });
  const model = stack.liveness;
  let store: AuditStore | null = null;
  try {
    if (model.info.sha256 !== context.expectModelSha256) {
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `the drill measured model sha256 ${context.expectModelSha256}, but the model in use is ${model.info.name} ${model.info.sha256}: run a new drill for this model`,
      );
    }
    const before = { ...model.activeThresholds };
    const a = config.audit;
    store = new AuditStore(config.device.state_dir, {
      maxRecords: a.max_records,
      maxBytes: Math.round(a.max_mb * 2 ** 20),
      maxAgeS: a.max_age_days * 86400,
      synchronous: a.synchronous,
    });
    const auditStore = store;
    const deviceId = resolveDeviceId({
      configured: config.device.id,
      stateDir: config.device.state_dir,
    }).id;
    // The set_thresholds path itself: checked against the model's floor (a looser value
    // needs liveness.allow_looser_thresholds in the local config), persisted, audited.
    const r = applyThresholdOverrides(
      {
        model,
        config,
        audit: (event, details) =>
          auditStore.append(
            'event',
            JSON.stringify(
              buildAuditEvent(deviceId, event, {
                ...details,
                via: 'drill',
                drill_id: context.drill_id,
                revert: context.revert,
              }),
            ),
          ),
      },
      update,
      context.revert ? `drill ${context.drill_id} revert` : `drill ${context.drill_id}`,
    );
    return { before, thresholds: r.thresholds, changed: r.changed };
  } finally {
    store?.close();
    await stack.close();
  }
}

/** Applies the proposal in the drill's report.json (or reverts a previous apply). */
export async function applyDrillProposal(
  config: Config,
  drillDir: string,
  revert: boolean,
): Promise<ApplyResult> {
  const reportFile = path.join(drillDir, 'report.json');
  const appliedFile = path.join(drillDir, 'applied.json');
  if (!existsSync(reportFile))
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `${drillDir} has no report.json: run \`fghv-kiosk drill report\` first`,
    );
  // Files of a drill directory (which the command line may name) by the file rule.
  const read = (file: string) =>
    readCheckedText(file, {
      what: 'drill file',
      maxBytes: MAX_DRILL_FILE_BYTES,
      code: ErrorCodes.DRILL_INVALID,
    });
  const report = JSON.parse(read(reportFile)) as DrillReport;
  const ctx = { drill_id: report.drill.id, revert, expectModelSha256: report.drill.model.sha256 };
  if (revert) {
    if (!existsSync(appliedFile))
      throw new KioskError(
        ErrorCodes.DRILL_INVALID,
        `drill ${report.drill.id} was never applied: nothing to revert`,
      );
    const applied = JSON.parse(read(appliedFile)) as { before: Record<string, number> };
    const r = await setThresholdsLocally(config, applied.before, ctx);
    writeFileAtomic(
      appliedFile,
      `${JSON.stringify({ ...applied, reverted_at: new Date().toISOString() }, null, 2)}\n`,
    );
    return r;
  }
  const p = report.proposal;
  if (!p)
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `drill ${report.drill.id} has no proposal: make the report with --target`,
    );
  if (p.status !== 'proposed')
    throw new KioskError(
      ErrorCodes.DRILL_TOO_FEW,
      `drill ${report.drill.id}: no thresholds proposed: ${p.message}`,
    );
  const r = await setThresholdsLocally(config, p.update, ctx);
  writeFileAtomic(
    appliedFile,
    `${JSON.stringify({ applied_at: new Date().toISOString(), update: p.update, before: r.before, after: r.thresholds }, null, 2)}\n`,
  );
  return r;
}
