/**
 * The drill report: figures from the record (report.json), the same as Markdown and HTML for
 * people, and the DET curve and score histograms as PNG. Everything is recomputed from the
 * record, so a report can be made again later (or from a drill that stopped half-way).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { detPng, histogramPng } from './charts.js';
import {
  type Basis,
  type CurvePoint,
  describeTarget,
  type Proposal,
  propose,
  sweep,
  type Target,
} from './propose.js';
import type { DrillRecord } from './record.js';
import {
  counted,
  frameOutcomes,
  frameScores,
  recordedOutcome,
  replayPresentation,
  thresholdAxis,
} from './replay.js';
import { type ErrorRates, errorRates, type Rate, requiredSamples } from './stats.js';

/** BPCER targets whose sample sizes the report always lists. */
const SAMPLE_TARGETS = [0.01, 0.05, 0.1];

export interface DrillReport {
  drill: Pick<
    DrillRecord['meta'],
    | 'id'
    | 'startedAt'
    | 'software'
    | 'cameraIds'
    | 'model'
    | 'configHash'
    | 'thresholds'
    | 'detector'
    | 'storeImages'
  > & { decision: { frames: number; min_live: number; min_spoof: number } };
  presentations: {
    recorded: number;
    counted: number;
    interrupted: number;
    bona_fide: number;
    attack: Record<string, number>;
    /** Counted presentations that ended without any decision (no face found, or too short). */
    no_decision: number;
  };
  /** At the thresholds in force. Per presence: as the pipeline decided during the drill. */
  per_presence: ErrorRates;
  /** At the thresholds in force, one outcome per inferred frame (frames of one presentation are correlated). */
  per_frame: ErrorRates & { frames: number };
  /** Replay of the record at the thresholds in force agrees with the live decisions in `agree` of `total`. */
  replay: { agree: number; total: number };
  /** Presentations needed to show BPCER <= target at 95 % confidence, against those recorded. */
  sample_size: { bpcer_max: number; bona_fide_needed: number | null; bona_fide_recorded: number }[];
  threshold: { key: string; score: string; in_force: number };
  proposal: Proposal | null;
  curves: Record<Basis, { threshold: number; bpcer: number | null; apcer: number | null }[]>;
  notes: string[];
}

const worstRate = (r: ErrorRates): number | null =>
  r.worstAttack === null ? null : (r.apcer[r.worstAttack]?.rate ?? null);

function curveRows(c: CurvePoint[]) {
  return c.map((p) => ({ threshold: p.threshold, bpcer: p.rates.bpcer.rate, apcer: worstRate(p.rates) }));
}

export function buildReport(rec: DrillRecord, target: Target | null): DrillReport {
  const { meta } = rec;
  const ps = counted(rec.presentations);
  if (!rec.presentations.length)
    throw new KioskError(
      ErrorCodes.DRILL_INVALID,
      `drill ${meta.id} has no presentations: nothing to report`,
    );
  const axis = thresholdAxis(meta.model.family, meta.thresholds);
  const inForce = meta.thresholds[axis.key] as number;
  const frames = frameScores(ps, axis);
  const perFrame = errorRates(frameOutcomes(frames, axis, inForce));
  const perPresence = errorRates(ps.map(recordedOutcome));
  const agree = ps.filter(
    (p) =>
      replayPresentation(p, axis, inForce, meta.decision).some((d) => d.decision === 'accept') ===
      recordedOutcome(p).accepted,
  ).length;
  const attack: Record<string, number> = {};
  for (const p of ps)
    if (p.label === 'attack') attack[p.attackType ?? ''] = (attack[p.attackType ?? ''] ?? 0) + 1;
  const nBona = ps.filter((p) => p.label === 'bona_fide').length;
  const curves = {
    presence: ps.length ? sweep(ps, axis, meta.decision, 'presence') : [],
    frame: ps.length ? sweep(ps, axis, meta.decision, 'frame') : [],
  };
  const proposal = target && ps.length ? propose(curves.presence, axis, target, 'presence') : null;
  const bpcerTargets = [
    ...new Set([...SAMPLE_TARGETS, ...(target?.kind === 'bpcer' ? [target.max] : [])]),
  ].sort((a, b) => a - b);
  const notes = [
    'A bona fide presentation counts as accepted when any decision during it was accept; an attack counts as accepted (an error) in the same case. Retry and no decision count as not accepted.',
    'Intervals are two-sided 95 % Clopper-Pearson; with no error the bound is the rule of three, 3/n.',
    'Per-frame figures use every inferred frame; frames of one presentation are not independent, so their intervals are too narrow: rely on the per-presence figures.',
    'ACER is given for comparison only; ISO/IEC 30107-3:2023 recommends reporting BPCER at a fixed APCER (or the reverse) instead.',
  ];
  if (meta.model.purpose !== 'production')
    notes.push(`The model measured (${meta.model.name}) is marked purpose: ${meta.model.purpose}.`);
  if (agree < ps.length)
    notes.push(
      `Replaying the record at the thresholds in force differs from the live decisions in ${ps.length - agree} presentation(s): the replay approximates when the tracker lost a face.`,
    );
  return {
    drill: {
      id: meta.id,
      startedAt: meta.startedAt,
      software: meta.software,
      cameraIds: meta.cameraIds,
      model: meta.model,
      configHash: meta.configHash,
      thresholds: meta.thresholds,
      detector: meta.detector,
      storeImages: meta.storeImages,
      decision: {
        frames: meta.decision.frames,
        min_live: meta.decision.min_live,
        min_spoof: meta.decision.min_spoof,
      },
    },
    presentations: {
      recorded: rec.presentations.length,
      counted: ps.length,
      interrupted: rec.presentations.length - ps.length,
      bona_fide: nBona,
      attack,
      no_decision: ps.filter((p) => p.decisions.length === 0).length,
    },
    per_presence: perPresence,
    per_frame: { ...perFrame, frames: frames.length },
    replay: { agree, total: ps.length },
    sample_size: bpcerTargets.map((t) => ({
      bpcer_max: t,
      bona_fide_needed: requiredSamples(
        t,
        nBona ? { errors: perPresence.bpcer.errors, n: nBona } : undefined,
      ),
      bona_fide_recorded: nBona,
    })),
    threshold: { key: axis.key, score: axis.scoreKey, in_force: inForce },
    proposal,
    curves: { presence: curveRows(curves.presence), frame: curveRows(curves.frame) },
    notes,
  };
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(2)} %`;

function rateCells(r: Rate): string[] {
  return [
    r.rate === null ? 'n/a' : `${r.errors} / ${r.n}`,
    pct(r.rate),
    r.ci
      ? `${pct(r.ci.lower)} - ${pct(r.ci.upper)}${r.ci.method === 'rule_of_three' ? ' (rule of three)' : ''}`
      : 'n/a',
  ];
}

type Block =
  | { h: string }
  | { p: string }
  | { table: string[][] }
  | { img: string; alt: string }
  | { list: string[] };

function ratesTable(r: ErrorRates, unit = 'presentations'): string[][] {
  const rows = [['figure', `errors / ${unit}`, 'rate', '95 % interval']];
  rows.push(['BPCER', ...rateCells(r.bpcer)]);
  for (const [type, a] of Object.entries(r.apcer))
    rows.push([`APCER ${type}${type === r.worstAttack ? ' (worst)' : ''}`, ...rateCells(a)]);
  rows.push(['ACER', '', pct(r.acer), '']);
  return rows;
}

function blocks(r: DrillReport): Block[] {
  const d = r.drill;
  const out: Block[] = [
    { h: `Site acceptance drill ${d.id}` },
    {
      p: `Model ${d.model.name} ${d.model.version} (${d.model.family}, purpose ${d.model.purpose}), sha256 ${d.model.sha256}; config hash ${d.configHash}; detector ${d.detector}; camera(s) ${d.cameraIds.join(', ')}; started ${d.startedAt}; ${d.software}.`,
    },
    {
      p: `Thresholds in force: ${Object.entries(d.thresholds)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}. Decision: ${d.decision.min_live} live of ${d.decision.frames} frames accept, ${d.decision.min_spoof} spoof frames reject. Face images stored: ${d.storeImages ? 'yes (opted in)' : 'no'}.`,
    },
    { h: 'Presentations' },
    {
      table: [
        [
          'recorded',
          'counted',
          'interrupted (not counted)',
          'bona fide',
          'attacks by type',
          'without any decision',
        ],
        [
          String(r.presentations.recorded),
          String(r.presentations.counted),
          String(r.presentations.interrupted),
          String(r.presentations.bona_fide),
          Object.entries(r.presentations.attack)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ') || 'none',
          String(r.presentations.no_decision),
        ],
      ],
    },
    { h: 'Per presence (decisions at the gate)' },
    { table: ratesTable(r.per_presence) },
    { h: `Per frame (${r.per_frame.frames} inferred frames)` },
    { table: ratesTable(r.per_frame, 'frames') },
    {
      p: `Replay of the record at the thresholds in force reproduces the live outcome of ${r.replay.agree} of ${r.replay.total} presentations.`,
    },
    { h: 'Sample size' },
    {
      table: [
        ['to show BPCER at most', 'bona fide presentations needed', 'recorded'],
        ...r.sample_size.map((s) => [
          pct(s.bpcer_max),
          s.bona_fide_needed === null
            ? 'not reachable (observed rate is above it)'
            : String(s.bona_fide_needed),
          String(s.bona_fide_recorded),
        ]),
      ],
    },
    { h: 'Proposed thresholds' },
  ];
  const p = r.proposal;
  if (!p) out.push({ p: 'No target was given (use --target).' });
  else if (p.status === 'refused')
    out.push({ p: `Target ${describeTarget(p.target)}: refused (${p.code}). ${p.message}` });
  else
    out.push(
      {
        p: `Target ${describeTarget(p.target)}: ${p.key} = ${p.threshold} (now ${r.threshold.in_force})${p.eer === undefined ? '' : `, EER ${pct(p.eer)}`}. set_thresholds ${JSON.stringify(p.update)}. Not applied: apply with \`fghv-kiosk drill apply ${d.id}\`.`,
      },
      { table: ratesTable(p.at) },
    );
  out.push(
    { h: 'Curves' },
    { img: 'det.png', alt: `DET curve over ${r.threshold.key}` },
    { img: 'histogram.png', alt: `histograms of ${r.threshold.score}` },
    { h: 'Notes' },
    { list: r.notes },
  );
  return out;
}

export function renderMarkdown(r: DrillReport): string {
  return `${blocks(r)
    .map((b) => {
      if ('h' in b) return `## ${b.h}`;
      if ('p' in b) return b.p;
      if ('img' in b) return `![${b.alt}](${b.img})`;
      if ('list' in b) return b.list.map((l) => `- ${l}`).join('\n');
      const [head, ...rows] = b.table as [string[], ...string[][]];
      return [
        `| ${head.join(' | ')} |`,
        `|${head.map(() => '---').join('|')}|`,
        ...rows.map((row) => `| ${row.join(' | ')} |`),
      ].join('\n');
    })
    .join('\n\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderHtml(r: DrillReport): string {
  const body = blocks(r)
    .map((b) => {
      if ('h' in b) return `<h2>${esc(b.h)}</h2>`;
      if ('p' in b) return `<p>${esc(b.p)}</p>`;
      if ('img' in b) return `<p><img src="${b.img}" alt="${esc(b.alt)}"></p>`;
      if ('list' in b) return `<ul>${b.list.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`;
      const [head, ...rows] = b.table as [string[], ...string[][]];
      return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows
        .map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
        .join('')}</table>`;
    })
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Drill ${esc(r.drill.id)}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style>
</head><body>
${body}
</body></html>
`;
}

/** Writes report.json, report.md, report.html, det.png and histogram.png into the drill directory. */
export function writeReport(
  rec: DrillRecord,
  target: Target | null,
): { report: DrillReport; files: string[] } {
  const report = buildReport(rec, target);
  const axis = thresholdAxis(rec.meta.model.family, rec.meta.thresholds);
  const ps = counted(rec.presentations);
  const frames = frameScores(ps, axis);
  const classes = (values: { label: string; attackType: string | null; v: number }[]) => {
    const names = ['bona_fide', ...Object.keys(report.presentations.attack).sort()];
    return names.map((n) => ({
      name: n === 'bona_fide' ? 'bona fide' : n,
      values: values
        .filter((x) =>
          n === 'bona_fide' ? x.label === 'bona_fide' : x.attackType === n && x.label === 'attack',
        )
        .map((x) => x.v),
    }));
  };
  const presenceMeans = ps.flatMap((p) => {
    const v = frames.length
      ? p.frames
          .flatMap((f) => f.faces.map((o) => o.scores?.[axis.scoreKey]))
          .filter((x): x is number => typeof x === 'number')
      : [];
    return v.length
      ? [{ label: p.label, attackType: p.attackType, v: v.reduce((a, b) => a + b, 0) / v.length }]
      : [];
  });
  const marks = [{ label: `in force ${report.threshold.in_force}`, at: report.threshold.in_force }];
  if (report.proposal?.status === 'proposed')
    marks.push({ label: `proposed ${report.proposal.threshold}`, at: report.proposal.threshold });
  const toPoints = (c: DrillReport['curves']['presence']) =>
    c
      .filter((p) => p.bpcer !== null && p.apcer !== null)
      .map((p) => [p.apcer as number, p.bpcer as number] as [number, number]);
  const files: [string, string | Buffer][] = [
    ['report.json', `${JSON.stringify(report, null, 2)}\n`],
    ['report.md', renderMarkdown(report)],
    ['report.html', renderHtml(report)],
    [
      'det.png',
      detPng(
        [
          { name: 'per presence', points: toPoints(report.curves.presence) },
          { name: 'per frame', points: toPoints(report.curves.frame) },
        ],
        `DET, sweeping ${report.threshold.key} (${rec.meta.model.name})`,
      ),
    ],
    [
      'histogram.png',
      histogramPng(
        [
          {
            title: `per frame: ${axis.scoreKey}`,
            classes: classes(frames.map((f) => ({ label: f.label, attackType: f.attackType, v: f.score }))),
            marks,
          },
          { title: `per presence: mean ${axis.scoreKey}`, classes: classes(presenceMeans), marks },
        ],
        axis.scoreKey,
      ),
    ],
  ];
  for (const [name, data] of files) writeFileSync(path.join(rec.dir, name), data);
  return { report, files: files.map(([n]) => path.join(rec.dir, n)) };
}
