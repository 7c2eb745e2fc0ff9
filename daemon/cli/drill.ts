/**
 * `fghv-kiosk drill`: record a site acceptance drill, report it, apply its thresholds.
 *
 *   drill [run] [--config F] [--labels F] [--camera ID] [--target T] [--keep-images] [--json]
 *   drill report [ID] [--config F] [--target T] [--json]
 *   drill apply [ID] [--config F] [--revert]
 */
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { applyDrillProposal } from '../drill/apply.js';
import { describeTarget, parseTarget, type Target } from '../drill/propose.js';
import { drillsDir, latestDrillId, type PresentationRecord, readDrill } from '../drill/record.js';
import type { DrillReport } from '../drill/report.js';
import { writeReport } from '../drill/report.js';
import { type DrillContext, LiveDrill, openDrill, readLabels, runScripted } from '../drill/runner.js';

type Out = (line: string) => void;

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(2)} %`;

/** One line after each presentation: what was seen, what was decided, right or wrong. */
export function presentationSummary(p: PresentationRecord, scoreKey: string): string {
  const faces = p.frames.flatMap((f) => f.faces);
  const count = (v: string) => faces.filter((o) => o.verdict === v).length;
  const scores = faces.map((o) => o.scores?.[scoreKey]).filter((x): x is number => typeof x === 'number');
  const mean = scores.length ? (scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(3) : 'n/a';
  const decisions = p.decisions.map((d) => `${d.decision}(${d.reason})`).join(', ') || 'none';
  const what =
    p.label === 'bona_fide' ? `bona fide${p.subject ? ` (${p.subject})` : ''}` : `attack ${p.attackType}`;
  const accepted = p.decisions.some((d) => d.decision === 'accept');
  const verdict =
    p.status === 'interrupted'
      ? `INTERRUPTED (${p.interruption?.code}: ${p.interruption?.message}); kept, not counted`
      : p.label === 'bona_fide'
        ? accepted
          ? 'accepted: correct'
          : 'NOT accepted: a bona fide error'
        : accepted
          ? 'ACCEPTED: an attack got through'
          : 'not accepted: correct';
  return `#${p.index + 1} ${what}: ${p.frames.length} frames, ${faces.length} faces, verdicts live ${count('live')} / spoof ${count('spoof')} / uncertain ${count('uncertain')} / gated ${faces.filter((o) => o.verdict === null).length}, mean ${scoreKey} ${mean}; decisions ${decisions} -> ${verdict}`;
}

export function reportSummary(r: DrillReport): string[] {
  const lines = [
    `drill ${r.drill.id}: model ${r.drill.model.name} sha256 ${r.drill.model.sha256.slice(0, 16)}..., config ${r.drill.configHash}`,
    `presentations: ${r.presentations.counted} counted (${r.presentations.bona_fide} bona fide, ${
      Object.entries(r.presentations.attack)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'no attacks'
    }), ${r.presentations.interrupted} interrupted`,
  ];
  const b = r.per_presence.bpcer;
  lines.push(
    `per presence: BPCER ${b.errors}/${b.n} = ${pct(b.rate)} [95 % ${pct(b.ci?.lower)} - ${pct(b.ci?.upper)}]`,
  );
  for (const [type, a] of Object.entries(r.per_presence.apcer))
    lines.push(
      `  APCER ${type}: ${a.errors}/${a.n} = ${pct(a.rate)} [95 % ${pct(a.ci?.lower)} - ${pct(a.ci?.upper)}]${type === r.per_presence.worstAttack ? ' (worst)' : ''}`,
    );
  lines.push(`  ACER ${pct(r.per_presence.acer)}`);
  const p = r.proposal;
  if (p?.status === 'proposed')
    lines.push(
      `proposed for ${describeTarget(p.target)}: ${JSON.stringify(p.update)} (BPCER ${pct(p.at.bpcer.rate)}, worst APCER ${pct(p.at.worstAttack ? p.at.apcer[p.at.worstAttack]?.rate : null)}); not applied: \`fghv-kiosk drill apply ${r.drill.id}\``,
    );
  else if (p) lines.push(`no thresholds proposed for ${describeTarget(p.target)}: ${p.message}`);
  return lines;
}

function drillDir(config: Config, id: string | undefined): string {
  const chosen = id ?? latestDrillId(config.device.state_dir);
  if (!chosen)
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `no drill recorded in ${drillsDir(config.device.state_dir)}`,
    );
  return path.join(drillsDir(config.device.state_dir), path.basename(chosen));
}

function report(dir: string, target: Target | null, out: Out, json: boolean): DrillReport {
  const { report: r, files } = writeReport(readDrill(dir), target);
  if (json) out(JSON.stringify(r));
  else {
    for (const l of reportSummary(r)) out(l);
    out(`report: ${files.join(' ')}`);
  }
  return r;
}

async function interactive(ctx: DrillContext, cameraId: string, out: Out, scoreKey: string): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const drill = new LiveDrill(ctx, cameraId, (state, err) => {
    if (state !== 'running') out(`camera ${cameraId}: ${state}${err ? ` (${err.message})` : ''}`);
  });
  try {
    await drill.start();
    out(
      `Drill on camera ${cameraId}. Record bona fide presentations (several people, each a few times) and attacks by type.`,
    );
    for (;;) {
      const line = (
        await rl.question(
          '\nNext: "b [name]" bona fide, "a TYPE" attack (print, replay, ...), "q" to finish > ',
        )
      ).trim();
      if (line === 'q' || line === '') {
        if (line === 'q') break;
        continue;
      }
      const [cmd, ...rest] = line.split(/\s+/);
      const arg = rest.join(' ') || null;
      if (cmd !== 'b' && cmd !== 'a') {
        out('  type b, a TYPE or q');
        continue;
      }
      if (cmd === 'a' && !arg) {
        out('  an attack needs its type, e.g. "a print"');
        continue;
      }
      try {
        drill.begin(
          cmd === 'b'
            ? { label: 'bona_fide', attackType: null, subject: arg }
            : { label: 'attack', attackType: arg, subject: null },
        );
      } catch (e) {
        out(`  ${(e as Error).message}`);
        continue;
      }
      const timer = setInterval(() => {
        const p = drill.active;
        if (p)
          process.stdout.write(
            `\r  recording: ${p.frames.length} frames, ${p.frames.filter((f) => f.faces.length).length} with a face, ${p.decisions.length} decisions   `,
          );
      }, 500);
      await rl.question('  Present now; press Enter when the presentation is over (then step out of view). ');
      clearInterval(timer);
      out('  closing (waiting for the decisions of the faces seen)...');
      const rec = await drill.stop();
      out(
        rec
          ? `  ${presentationSummary(rec, scoreKey)}`
          : '  presentation lost with the camera (kept as interrupted)',
      );
    }
  } finally {
    rl.close();
    await drill.close();
  }
}

export async function runDrillCli(args: string[], software: string, out: Out): Promise<number> {
  const sub = args[0] && !args[0].startsWith('-') ? args[0] : 'run';
  const rest = args[0] === sub ? args.slice(1) : args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      labels: { type: 'string' },
      camera: { type: 'string' },
      target: { type: 'string' },
      'keep-images': { type: 'boolean', default: false },
      revert: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const { config } = loadConfig(values.config ?? process.env.FGHV_CONFIG ?? null);
  const target = values.target ? parseTarget(values.target) : null;
  const json = values.json === true;
  // With --json, stdout carries only the report; progress goes to stderr.
  const info: Out = json ? (l) => process.stderr.write(`${l}\n`) : out;
  if (sub === 'report') {
    report(drillDir(config, positionals[0]), target, out, json);
    return 0;
  }
  if (sub === 'apply') {
    const dir = drillDir(config, positionals[0]);
    const r = await applyDrillProposal(config, dir, values.revert === true);
    out(
      `${values.revert ? 'reverted' : 'applied'} thresholds ${JSON.stringify(r.thresholds)} (before ${JSON.stringify(r.before)}); stored in ${config.device.state_dir}/thresholds.json and audited. A running daemon uses them after a restart; undo with \`fghv-kiosk drill apply ${path.basename(dir)} --revert\`.`,
    );
    return 0;
  }
  if (sub !== 'run' || positionals.length)
    throw new KioskError(ErrorCodes.USAGE, 'drill: expected `drill [run|report|apply]`');
  const cameraId = values.camera ?? config.cameras[0]?.id ?? 'front';
  // A scripted drill's video files end by design: only errors are worth showing.
  const log = createLogger({ ...config.log, level: values.labels ? 'error' : 'warn' });
  const labels = values.labels ? readLabels(path.resolve(values.labels)) : null;
  const ctx = await openDrill({
    config,
    log,
    software,
    cameraIds: [cameraId],
    storeImages: values['keep-images'] === true,
  });
  const scoreKey = ctx.liveness.info.family === 'fghv' ? 'p_real' : 'p_live';
  info(
    `drill ${ctx.store.meta.id}: recording in ${ctx.store.dir}${ctx.store.meta.storeImages ? ' (face crops stored: opted in)' : ' (no images stored)'}`,
  );
  let failure: unknown = null;
  try {
    if (labels)
      await runScripted(ctx, labels, cameraId, {
        onPresentation: (p, i, n) => info(`[${i + 1}/${n}] ${presentationSummary(p, scoreKey)}`),
      });
    else await interactive(ctx, cameraId, info, scoreKey);
  } catch (e) {
    failure = e;
  } finally {
    await ctx.close();
  }
  const rec = readDrill(ctx.store.dir);
  if (failure) {
    info(
      `drill stopped: ${(failure as Error).message}; the ${rec.presentations.length} presentation(s) recorded are kept in ${ctx.store.dir}`,
    );
    if (rec.presentations.some((p) => p.status === 'complete')) report(ctx.store.dir, target, out, json);
    throw failure;
  }
  if (!rec.presentations.length)
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `no presentations were recorded; the drill is in ${ctx.store.dir}`,
    );
  report(ctx.store.dir, target, out, json);
  return 0;
}
