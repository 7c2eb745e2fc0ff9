import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, validateConfig } from '../config/load.js';
import { silentLogger } from '../core/log.js';
import { Daemon } from '../daemon/daemon.js';
import { testModel } from '../test/helpers/models.js';
import { commit, machine } from './machine.js';

interface Row {
  detector: string;
  model: string;
  provider: string;
  frames: number;
  decisions: number;
  seconds: number;
  fps: number;
  stages: Record<string, { p50: number | null; p95: number | null; n: number }>;
}

async function runOnce(detector: 'blazeface' | 'yunet', manifest: string): Promise<Row> {
  const state = mkdtempSync(path.join(os.tmpdir(), 'fghv-bench-'));
  const config = validateConfig(
    {
      device: { id: 'bench', state_dir: state },
      mqtt: { embedded_port: 0, health_interval_s: 3600 },
      status: { enabled: false },
      cameras: [
        { id: 'front', source: path.join(packageRoot, 'media/demo-kiosk.mp4'), loop: false, realtime: false },
      ],
      detector: { name: detector },
      liveness: { manifest, providers: ['cpu'] },
      // Every frame is decided on in a benchmark, however slow the machine.
      decision: { max_frame_age_ms: 600000 },
    },
    'bench',
  );
  let decisions = 0;
  const daemon = new Daemon({ config, log: silentLogger(), version: 'bench', onDecision: () => decisions++ });
  await daemon.start();
  const t0 = performance.now();
  await daemon.camerasDone();
  const seconds = (performance.now() - t0) / 1000;
  const snap = daemon.figures();
  await daemon.stop();
  const frames = snap.processed;
  return {
    detector,
    model: snap.model,
    provider: snap.provider,
    frames,
    decisions,
    seconds: Math.round(seconds * 100) / 100,
    fps: Math.round((frames / seconds) * 10) / 10,
    stages: snap.stages,
  };
}

async function main(): Promise<void> {
  const manifests = [
    path.join(packageRoot, 'models/fghv-demo/manifest.json'),
    // Installed from ../shared/data/models by `model fetch` (test/helpers/models.ts).
    await testModel('minifasnet-v2'),
    await testModel('minifasnet-ensemble'),
  ];
  const yunet = path.resolve(packageRoot, '../shared/data/models/yunet_s_640_640.onnx');
  const rows: Row[] = [];
  for (const detector of ['blazeface', 'yunet'] as const) {
    if (detector === 'yunet' && !existsSync(yunet)) {
      console.log(`skipping yunet: needs ${yunet}, which is absent`);
      continue;
    }
    for (const m of manifests) {
      try {
        const row = await runOnce(detector, m);
        rows.push(row);
        console.log(
          `${detector} + ${row.model}: ${row.fps} fps over ${row.frames} frames, ${row.decisions} decisions`,
        );
      } catch (e) {
        console.log(`skipping ${detector} + ${m}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  const stages = ['capture', 'detect', 'align', 'infer', 'decide', 'publish'];
  const when = new Date().toISOString();
  const header = `## ${when.slice(0, 10)}, commit ${commit()}\n\nMachine: ${machine()}\n\nSample video media/demo-kiosk.mp4 (640x480), file driver as fast as possible, CPU provider, embedded broker. Per-stage p50 / p95 in ms; fps = frames processed / wall time.\n\n`;
  const table = [
    `| detector | model | fps | frames | decisions | ${stages.join(' | ')} |`,
    `|---|---|---|---|---|${stages.map(() => '---').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${r.detector} | ${r.model} | ${r.fps} | ${r.frames} | ${r.decisions} | ${stages
          .map((s) => {
            const f = r.stages[s];
            return f?.n ? `${f.p50} / ${f.p95}` : '-';
          })
          .join(' | ')} |`,
    ),
  ].join('\n');
  console.log(`\n${header}${table}\n`);
  const doc = path.join(packageRoot, 'bench/pipeline.md');
  const previous = existsSync(doc) ? readFileSync(doc, 'utf8').replace(/^# .*\n+/, '') : '';
  writeFileSync(
    doc,
    `# Pipeline benchmark (make bench)\n\nNewest first.\n\n${header}${table}\n\n${previous.replace(/^Newest first\.\n+/, '')}`,
  );
  writeFileSync(
    path.join(packageRoot, 'bench/pipeline.json'),
    `${JSON.stringify({ date: when, commit: commit(), machine: machine(), rows }, null, 2)}\n`,
  );
}

await main();
