/**
 * What the status page costs the pipeline. The whole daemon on the sample video as fast as it
 * goes (like pipeline.bench.ts), in rounds of four runs: status server disabled, enabled with
 * the page closed, and open with one viewer pulling the MJPEG preview at preview_fps 5 (the
 * default) and 30 (the maximum). The viewer is a separate process, as a browser would be.
 * Throughput is measured from the moment the viewer is connected to the end of the video.
 * Records machine, date and commit in bench/status.md and bench/status.json.
 *
 *   node dist/bench/status-overhead.bench.js [rounds]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, validateConfig } from '../config/load.js';
import { cv } from '../core/cv.js';
import { silentLogger } from '../core/log.js';
import { Daemon } from '../daemon/daemon.js';
import { drawOverlay, type OverlayFace, overlayShapes } from '../daemon/status/overlay.js';
import { JPEG_QUALITY } from '../daemon/status/preview.js';
import { testModel } from '../test/helpers/models.js';
import { commit, machine } from './machine.js';

/**
 * The work one preview frame costs, stage by stage, on the sample video's frames with one
 * face drawn: copy (on the event loop, in the frame event), overlay (event loop), JPEG encode
 * (thread pool). Medians over many frames, so robust to other load on the machine.
 */
function previewFrameCosts(): { copyMs: number; drawMs: number; encodeMs: number; jpegKb: number } {
  const cap = new cv.VideoCapture(path.join(packageRoot, 'media/demo-kiosk.mp4'));
  const face: OverlayFace = {
    trackId: 1,
    box: [250, 120, 160, 190],
    capturedMono: 0,
    quality: { face_px: 160, sharpness: 0.4, brightness: 0.5 },
    qualityGate: null,
    verdict: 'live',
    scores: { p_real: 0.9, var: 0.01, delta_kl: 0.2 },
    facesInView: 1,
    landmarks: [
      [290, 180],
      [370, 180],
      [330, 220],
      [300, 260],
      [360, 260],
    ],
    detectorScore: 0.9,
    presence: 'new',
  };
  const copy: number[] = [];
  const draw: number[] = [];
  const encode: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 200; i++) {
    const frame = cap.read();
    if (frame.empty) break;
    let t = performance.now();
    const c = frame.copy();
    copy.push(performance.now() - t);
    t = performance.now();
    drawOverlay(c, overlayShapes([face], c.cols, c.rows));
    draw.push(performance.now() - t);
    t = performance.now();
    bytes += cv.imencode('.jpg', c, [cv.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]).length;
    encode.push(performance.now() - t);
    c.release();
    frame.release();
  }
  cap.release();
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    copyMs: r(median(copy)),
    drawMs: r(median(draw)),
    encodeMs: r(median(encode)),
    jpegKb: Math.round(bytes / copy.length / 1024),
  };
}

type Mode = 'disabled' | 'closed' | 'open@5fps' | 'open@30fps';
const MODES: Mode[] = ['disabled', 'closed', 'open@5fps', 'open@30fps'];

interface Run {
  mode: Mode;
  frames: number;
  seconds: number;
  fps: number;
  /** Daemon process CPU (user + system) per processed frame, ms. */
  cpuMsPerFrame: number;
  previewSent: number;
}

/** MiniFASNetV2 installed from ../shared/data/models by `model fetch` (test/helpers/models.ts). */
const MINIFASNET = await testModel('minifasnet-v2');

function manifest(): string {
  const demo = path.join(packageRoot, 'models/fghv-demo/manifest.json');
  return existsSync(demo) ? demo : MINIFASNET;
}

/** A viewer in its own process: reads the stream and throws the bytes away. */
function startViewer(url: string): ChildProcess {
  const code = `require('http').get(process.argv[1], (r) => r.resume()).on('error', () => process.exit(1));`;
  return spawn(process.execPath, ['-e', code, `${url}preview.mjpeg`], { stdio: 'ignore' });
}

async function previewClients(url: string): Promise<number> {
  const s = (await (await fetch(`${url}api/status`)).json()) as { preview: { clients: number } };
  return s.preview.clients;
}

async function runOnce(mode: Mode): Promise<Run> {
  const state = mkdtempSync(path.join(os.tmpdir(), 'fghv-bench-status-'));
  const config = validateConfig(
    {
      device: { id: 'bench', state_dir: state },
      mqtt: { embedded_port: 0, health_interval_s: 3600 },
      cameras: [
        { id: 'front', source: path.join(packageRoot, 'media/demo-kiosk.mp4'), loop: false, realtime: false },
      ],
      liveness: { manifest: manifest(), providers: ['cpu'] },
      decision: { max_frame_age_ms: 600000 },
      status: { enabled: mode !== 'disabled', port: 0, preview_fps: mode === 'open@30fps' ? 30 : 5 },
    },
    'bench',
  );
  const daemon = new Daemon({ config, log: silentLogger(), version: 'bench' });
  let viewer: ChildProcess | null = null;
  try {
    await daemon.start();
    const url = daemon.statusUrl;
    if (mode.startsWith('open') && url) {
      viewer = startViewer(url);
      const t = Date.now();
      while ((await previewClients(url)) < 1) {
        if (Date.now() - t > 10_000) throw new Error('the viewer did not connect');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const f0 = daemon.figures().processed;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await daemon.camerasDone();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const frames = daemon.figures().processed - f0;
    const previewSent = url
      ? ((await (await fetch(`${url}api/status`)).json()) as { preview: { sent: number } }).preview.sent
      : 0;
    return {
      mode,
      frames,
      seconds: Math.round(seconds * 100) / 100,
      fps: Math.round((frames / seconds) * 10) / 10,
      cpuMsPerFrame: Math.round(((cpu.user + cpu.system) / 1000 / frames) * 10) / 10,
      previewSent,
    };
  } finally {
    viewer?.kill('SIGKILL');
    await daemon.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const costs = previewFrameCosts();
  console.log('one preview frame:', costs);
  const runs: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const mode of MODES) {
      const run = await runOnce(mode);
      runs.push(run);
      console.log(
        `round ${r + 1} ${mode}: ${run.fps} fps over ${run.frames} frames, ${run.cpuMsPerFrame} ms CPU/frame, ${run.previewSent} preview frames`,
      );
    }
  }
  const base = median(runs.filter((x) => x.mode === 'disabled').map((x) => x.fps));
  const rows = MODES.map((mode) => {
    const rs = runs.filter((x) => x.mode === mode);
    const fps = median(rs.map((x) => x.fps));
    return `| ${mode} | ${fps} | ${rs.map((x) => x.fps).join(', ')} | ${Math.round((fps / base - 1) * 1000) / 10}% | ${median(rs.map((x) => x.cpuMsPerFrame))} | ${median(rs.map((x) => x.previewSent))} |`;
  });
  const when = new Date().toISOString();
  const load = os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');
  const header = `## ${when.slice(0, 10)}, commit ${commit()}\n\nMachine: ${machine()}; load average at the end ${load} (1/5/15 min: other work on the machine makes runs noisy, hence interleaved rounds and medians)\n\nModel ${path.relative(packageRoot, manifest())}, BlazeFace, CPU provider; media/demo-kiosk.mp4 (360 frames, 640x480) as fast as the pipeline takes it; ${rounds} rounds of the four modes, interleaved. fps = frames processed after the viewer connected / wall time; CPU = the daemon process's user+system time per frame (the viewer runs in its own process).\n\n`;
  const table = [
    '| status page | median fps | fps per round | vs disabled | CPU ms/frame | preview frames sent |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const perFrame = costs.copyMs + costs.drawMs + costs.encodeMs;
  const micro = `\n\nOne preview frame (median of 200 sample-video frames, one face drawn): copy ${costs.copyMs} ms + overlay ${costs.drawMs} ms on the event loop, JPEG encode (quality ${JPEG_QUALITY}) ${costs.encodeMs} ms on the thread pool, ${costs.jpegKb} KiB. At preview_fps 5 that is ${Math.round(perFrame * 5 * 10) / 100}% of one core, at 30 ${Math.round(perFrame * 30 * 10) / 100}% (at most the pipeline's own frame rate). With the page closed none of it runs (no frame listener).`;
  console.log(`\n${header}${table}${micro}\n`);
  const doc = path.join(packageRoot, 'bench/status.md');
  const previous = existsSync(doc)
    ? readFileSync(doc, 'utf8')
        .replace(/^# .*\n+/, '')
        .replace(/^Newest first\.\n+/, '')
    : '';
  writeFileSync(
    doc,
    `# Status page overhead (bench/status-overhead.bench.ts)\n\nNewest first.\n\n${header}${table}${micro}\n\n${previous}`,
  );
  writeFileSync(
    path.join(packageRoot, 'bench/status.json'),
    `${JSON.stringify({ date: when, commit: commit(), machine: machine(), previewFrame: costs, runs }, null, 2)}\n`,
  );
}

await main();
