/**
 * `make bench`: the performance report (bench/performance.md and bench/performance.json).
 * Each section runs in child processes and is saved on its own in bench-out/perf/<section>.json
 * with its date, commit and load average, so a section can be rerun alone (`--sections soak`)
 * and the report is rendered from whatever sections are saved.
 *
 *   node dist/bench/perf/report.js [--sections equal-work,stages,latency,idle,pipeline,torch,ort,gemm,soak]
 *     [--frames N] [--reps N] [--soak-frames N]      (FGHV_SOAK_FRAMES also sets the soak)
 *     [--equal-work-videos 640x480,1920x1080,1920x1080-mjpeg] [--render no]   (no: save sections, keep bench/)
 *
 * equal-work, stages, latency and idle need ../shared/data (the live photo T1, YuNet, MiniFASNet); without it
 * they are skipped with a message naming the missing path.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../config/load.js';
import { MALLOC_ENV } from '../../daemon/supervision/malloc-env.js';
import { testModel } from '../../test/helpers/models.js';
import { commit } from '../machine.js';
import type { IdleResult, IdleSpec } from './idle-run.js';
import type { LatencyResult, LatencySpec } from './latency-run.js';
import type { RunResult, RunSpec } from './pipeline-run.js';
import { renderReport, type Saved } from './render.js';
import { mjpegVideo, oneFaceVideo, type PresenceVideo, presenceVideo, T1 } from './videos.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(packageRoot, 'bench-out/perf');
const PY = '/usr/bin/python3';
const shared = (f: string) => path.resolve(packageRoot, '../shared/data/models', f);

/** The equal-work pair: the detector and liveness model both sides run (Python on cv2.dnn). */
const EQUAL_WORK = {
  detector: 'yunet',
  detectorModel: shared('yunet_n_320_320.onnx'),
  // Installed from ../shared/data/models by `model fetch` (test/helpers/models.ts).
  manifest: await testModel('minifasnet-v2'),
} as const;
const MINIFASNET_V1SE = await testModel('minifasnet-v1se');
const MINIFASNET_ENSEMBLE = await testModel('minifasnet-ensemble');

export const DETECTORS = [
  {
    label: 'blazeface-front-128',
    detector: 'blazeface',
    model: 'models/blazeface/face_detection_front_128x128_barracuda.onnx',
  },
  {
    label: 'blazeface-back-256',
    detector: 'blazeface',
    model: 'models/blazeface/face_detection_back_256x256_barracuda.onnx',
  },
  { label: 'yunet-s-640', detector: 'yunet', model: shared('yunet_s_640_640.onnx') },
  { label: 'yunet-n-320', detector: 'yunet', model: shared('yunet_n_320_320.onnx') },
] as const;

function args(): Map<string, string> {
  const m = new Map<string, string>();
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) m.set((a[i] ?? '').replace(/^--/, ''), a[i + 1] ?? '');
  return m;
}

function save(section: string, fn: () => unknown): void {
  const load0 = os.loadavg()[0] as number;
  const started = new Date().toISOString();
  console.log(`\n== ${section} (load average ${load0.toFixed(2)})`);
  const data = fn();
  const saved: Saved = {
    section,
    date: started,
    commit: commit(),
    loadavg: [Math.round(load0 * 100) / 100, Math.round((os.loadavg()[0] as number) * 100) / 100],
    data,
  };
  writeFileSync(path.join(outDir, `${section}.json`), `${JSON.stringify(saved, null, 1)}\n`);
}

/**
 * One pipeline configuration in a child process (own RSS, own CPU figures), with the glibc malloc
 * settings the daemon's launchers use (daemon/supervision/malloc-env.ts).
 */
function runPipeline(spec: Omit<RunSpec, 'out'>, timeoutS: number): RunResult | null {
  const out = path.join(outDir, `run-${process.pid}.json`);
  rmSync(out, { force: true });
  const r = spawnSync(
    process.execPath,
    [path.join(here, 'pipeline-run.js'), JSON.stringify({ ...spec, out })],
    {
      cwd: packageRoot,
      env: { ...process.env, ...MALLOC_ENV },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: timeoutS * 1000,
    },
  );
  if (r.status !== 0 || !existsSync(out)) {
    console.log(`  run failed (status ${r.status}, signal ${r.signal})`);
    return null;
  }
  return JSON.parse(readFileSync(out, 'utf8')) as RunResult;
}

/** One latency run (latency-run.ts) in a child process; it starts its own mosquitto. */
function runLatency(spec: Omit<LatencySpec, 'out'>): LatencyResult | null {
  const out = path.join(outDir, `latency-${process.pid}.json`);
  rmSync(out, { force: true });
  const r = spawnSync(
    process.execPath,
    [path.join(here, 'latency-run.js'), JSON.stringify({ ...spec, out })],
    {
      cwd: packageRoot,
      env: { ...process.env, ...MALLOC_ENV },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 600 * 1000,
    },
  );
  if (r.status !== 0 || !existsSync(out)) {
    console.log(`  latency run failed (status ${r.status}, signal ${r.signal})`);
    return null;
  }
  return JSON.parse(readFileSync(out, 'utf8')) as LatencyResult;
}

/** One idle-kiosk run (idle-run.ts) in a child process. */
function runIdle(spec: Omit<IdleSpec, 'out'>): IdleResult | null {
  const out = path.join(outDir, `idle-${process.pid}.json`);
  rmSync(out, { force: true });
  const r = spawnSync(process.execPath, [path.join(here, 'idle-run.js'), JSON.stringify({ ...spec, out })], {
    cwd: packageRoot,
    env: { ...process.env, ...MALLOC_ENV },
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600 * 1000,
  });
  if (r.status !== 0 || !existsSync(out)) {
    console.log(`  idle run failed (status ${r.status}, signal ${r.signal})`);
    return null;
  }
  return JSON.parse(readFileSync(out, 'utf8')) as IdleResult;
}

/** What equal-work and latency need from ../shared/data; null when all of it is there. */
function missingShared(): string | null {
  for (const p of [T1, EQUAL_WORK.detectorModel, shared('MiniFASNetV2.onnx')]) if (!existsSync(p)) return p;
  return null;
}

/**
 * The environment for the Python runs that use OpenBLAS (GEMM peak, PyTorch eager): Debian 12's
 * OpenBLAS 0.3.21 does not recognise newer CPUs (this host's Xeon, family 6 model 207) and falls
 * back to its SSE3 "Prescott" kernels, which measured a GEMM peak 5x too low (29 instead of 153
 * GFLOP/s on one thread). OPENBLAS_CORETYPE names the kernel the CPU's flags support; other
 * OpenBLAS overrides are dropped.
 */
function blasEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch {
    // not Linux: OpenBLAS detects on its own
  }
  const has = (f: string) => flags.split(' ').includes(f);
  if (has('avx512f')) env.OPENBLAS_CORETYPE = 'SkylakeX';
  else if (has('avx2')) env.OPENBLAS_CORETYPE = 'Haswell';
  return env;
}

function python(script: string, argv: string[], env: NodeJS.ProcessEnv = process.env): unknown {
  const r = spawnSync(PY, [path.join(packageRoot, 'bench', script), ...argv], {
    cwd: packageRoot,
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
    timeout: 1800 * 1000,
  });
  const last = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !last) throw new Error(`${script} failed with status ${r.status}`);
  return JSON.parse(last);
}

/** The sample video at 1920x1080 (pillarboxed, faces not stretched), made in a temp dir. */
function video1080(tmp: string): string {
  const out = path.join(tmp, 'demo-kiosk-1080p.mp4');
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-i',
    path.join(packageRoot, 'media/demo-kiosk.mp4'),
    '-vf',
    'scale=1440:1080,pad=1920:1080:240:0',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '18',
    out,
  ]);
  return out;
}

/** A manifest for the fp16 variant the demo manifest lists (same model, fp16 weights and arithmetic). */
function fp16Manifest(tmp: string): string {
  const dir = path.join(packageRoot, 'models/fghv-demo');
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const v = m.variants.fp16;
  const out = path.join(tmp, 'fghv-demo-fp16.manifest.json');
  writeFileSync(
    out,
    JSON.stringify({ ...m, name: `${m.name}-fp16`, file: path.join(dir, v.file), sha256: v.sha256 }),
  );
  return out;
}

function main(): void {
  const a = args();
  const sections = (a.get('sections') ?? 'equal-work,stages,latency,idle,pipeline,torch,ort,gemm,soak').split(
    ',',
  );
  const frames = a.has('frames') ? Number(a.get('frames')) : null;
  const reps = Number(a.get('reps') ?? 3);
  const soakFrames = Number(a.get('soak-frames') ?? process.env.FGHV_SOAK_FRAMES ?? 100000);
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fghv-perf-'));
  const video640 = path.join(packageRoot, 'media/demo-kiosk.mp4');
  const manifests = {
    'fghv-demo': path.join(packageRoot, 'models/fghv-demo/manifest.json'),
    'fghv-demo-fp16': fp16Manifest(tmp),
    'minifasnet-v2': EQUAL_WORK.manifest,
    'minifasnet-v1se': MINIFASNET_V1SE,
    'minifasnet-ensemble': MINIFASNET_ENSEMBLE,
  };
  const base = { frames, loop: false, warmupFrames: 10, sampleEvery: 0, threads: 0 };
  try {
    if (sections.includes('pipeline')) {
      save('pipeline', () => {
        const rows: (RunResult & { resolution: string; detectorLabel: string; liveness: string })[] = [];
        const videos: [string, string][] = [
          ['640x480', video640],
          ['1920x1080', video1080(tmp)],
        ];
        for (const [resolution, video] of videos) {
          const combos = [
            ...DETECTORS.map((d) => [d, 'fghv-demo'] as const),
            ...(['fghv-demo-fp16', 'minifasnet-v2', 'minifasnet-v1se', 'minifasnet-ensemble'] as const).map(
              (l) => [DETECTORS[2], l] as const,
            ),
          ];
          for (const [d, l] of combos) {
            if (!existsSync(path.resolve(packageRoot, d.model))) continue;
            console.log(`${resolution} ${d.label} + ${l}`);
            const r = runPipeline(
              { ...base, video, detector: d.detector, detectorModel: d.model, manifest: manifests[l] },
              1200,
            );
            if (r) rows.push({ ...r, resolution, detectorLabel: d.label, liveness: l });
          }
        }
        return rows;
      });
    }
    const absent = missingShared();
    if (absent && ['equal-work', 'stages', 'latency', 'idle'].some((x) => sections.includes(x)))
      console.log(
        `\n== equal-work, stages, latency, idle: skipped, needs ${absent} (../shared/data), which is absent`,
      );
    if (sections.includes('equal-work') && !absent) {
      save('equal-work', () => {
        // Interleaved: Python, Node, Python, Node ... per resolution, so a change in the machine's
        // state touches both sides alike; the ratio is taken per pair and as the median.
        const rows: {
          resolution: string;
          decode: unknown;
          pairs: { python: unknown; node: RunResult | null }[];
        }[] = [];
        const which = (a.get('equal-work-videos') ?? '640x480,1920x1080,1920x1080-mjpeg').split(',');
        for (const label of which) {
          // '-mjpeg': the same video as a USB camera's MJPEG stream (every frame a JPEG), read
          // by the file driver (full decode); '-mjpeg-auto': read as the daemon reads an MJPEG
          // camera (kind ffmpeg, decode auto: reduced decode for the detector).
          // camera (kind ffmpeg, decode auto: reduced decode for the detector); '-mjpeg-reduced':
          // the same with decode 'reduced' (the per-face step too reads a reduced decode).
          const size = label.replace(/-mjpeg(-auto|-reduced)?$/, '') as '640x480' | '1920x1080';
          const h264 = oneFaceVideo(tmp, size) as string;
          const mjpeg = /-mjpeg(-auto|-reduced)?$/.test(label);
          const mode = /-(auto|reduced)$/.exec(label)?.[1] as 'auto' | 'reduced' | undefined;
          const auto = mode !== undefined;
          const video = mjpeg ? mjpegVideo(h264) : h264;
          const resolution = mode ? `${size} MJPEG decode ${mode}` : mjpeg ? `${size} MJPEG` : size;
          const decode = JSON.parse(
            execFileSync(process.execPath, [path.join(here, 'decode-cost.js'), video], { encoding: 'utf8' })
              .trim()
              .split('\n')
              .pop() as string,
          );
          console.log(`${resolution} decode alone: ${JSON.stringify(decode)}`);
          const pairs: { python: unknown; node: RunResult | null }[] = [];
          for (let i = 0; i < reps; i++) {
            console.log(`${resolution} pair ${i + 1} of ${reps}`);
            const py = python('reference.py', [
              video,
              EQUAL_WORK.detectorModel,
              'minifasnet',
              '--manifest',
              EQUAL_WORK.manifest,
              '--warmup',
              '10',
            ]);
            console.log(`  python: ${JSON.stringify(py)}`);
            const node = runPipeline(
              { ...base, video, ...EQUAL_WORK, ...(auto ? { camera: 'ffmpeg' as const, decode: mode } : {}) },
              1200,
            );
            pairs.push({ python: py, node });
          }
          rows.push({ resolution, decode, pairs });
        }
        return rows;
      });
    }
    if (sections.includes('stages') && !absent) {
      save('stages', () =>
        (['640x480', '1920x1080'] as const).map((resolution) => {
          const out = path.join(outDir, 'stages-run.json');
          execFileSync(
            process.execPath,
            [path.join(here, 'stage-costs.js'), oneFaceVideo(tmp, resolution) as string, out],
            {
              stdio: ['ignore', 'inherit', 'inherit'],
            },
          );
          return { resolution, ...JSON.parse(readFileSync(out, 'utf8')) };
        }),
      );
    }
    if (sections.includes('latency') && !absent) {
      save('latency', () => {
        const v = presenceVideo(tmp) as NonNullable<ReturnType<typeof presenceVideo>>;
        const defaults = {
          detector: 'blazeface',
          detectorModel: null,
          manifest: manifests['fghv-demo'],
        } as const;
        const configs = [
          {
            label: 'defaults: blazeface-back-256 + fghv-demo, scene gate off',
            ...defaults,
            sceneGate: false,
          },
          { label: 'defaults: blazeface-back-256 + fghv-demo, scene gate on', ...defaults, sceneGate: true },
          { label: 'equal-work pair: yunet-n-320 + minifasnet-v2', ...EQUAL_WORK },
        ] as const;
        return configs.map((c) => {
          console.log(`latency: ${c.label}`);
          const { label, ...rest } = c;
          return {
            label,
            fps: v.fps,
            faceFrames: v.faceFrames,
            result: runLatency({ video: v.path, fps: v.fps, appearAt: v.appearAt, ...rest }),
          };
        });
      });
    }
    if (sections.includes('idle') && !absent) {
      save('idle', () => {
        // 36 s of an empty room, then 36 s of a person; windows clear of the cut and the warm-up.
        const v = presenceVideo(tmp, {
          fps: 30,
          presences: 1,
          emptyS: 36,
          faceS: 36,
          tailS: 0,
        }) as PresenceVideo;
        const runs: (IdleResult & { codec: string })[] = [];
        // --idle-codecs: which sources (default H.264,MJPEG; 'MJPEG-auto': the MJPEG video read
        // as the daemon reads an MJPEG camera, kind ffmpeg with decode auto).
        const codecs = (a.get('idle-codecs') ?? 'H.264,MJPEG').split(',');
        const sources = (
          [
            ['H.264', v.path, false],
            ['H.264', v.path, true],
            ['MJPEG', mjpegVideo(v.path), false],
            ['MJPEG', mjpegVideo(v.path), true],
            ['MJPEG-auto', mjpegVideo(v.path), false],
            ['MJPEG-auto', mjpegVideo(v.path), true],
          ] as const
        ).filter(([codec]) => codecs.includes(codec));
        for (let i = 0; i < reps; i++)
          for (const [codec, video, sceneGate] of sources) {
            console.log(
              `idle kiosk: ${codec}, scene gate ${sceneGate ? 'on' : 'off'}, run ${i + 1} of ${reps}`,
            );
            const r = runIdle({
              video,
              fps: v.fps,
              emptyWindow: [4, 34],
              personWindow: [40, 70],
              personAt: 36,
              sceneGate,
              ...(codec === 'MJPEG-auto' ? { camera: 'ffmpeg' as const } : {}),
              detector: 'blazeface',
              detectorModel: null,
              manifest: manifests['fghv-demo'],
            });
            if (r) runs.push({ ...r, codec });
          }
        // What the idle detections (idle_fps) cost: the gate at 1 look a second instead of 2.
        if (a.get('idle-fps1') !== 'no')
          for (const [codec, video] of [
            ['H.264', v.path],
            ['MJPEG', mjpegVideo(v.path)],
          ] as const) {
            console.log(`idle kiosk: ${codec}, scene gate on, idle_fps 1`);
            const r = runIdle({
              video,
              fps: v.fps,
              emptyWindow: [4, 34],
              personWindow: [40, 70],
              personAt: 36,
              sceneGate: true,
              gateOverrides: { idle_fps: 1 },
              detector: 'blazeface',
              detectorModel: null,
              manifest: manifests['fghv-demo'],
            });
            if (r) runs.push({ ...r, codec });
          }
        return runs;
      });
    }
    if (sections.includes('torch')) {
      const files = [
        ...DETECTORS.map((d) => path.resolve(packageRoot, d.model)),
        shared('MiniFASNetV2.onnx'),
        shared('MiniFASNetV1SE.onnx'),
        path.join(packageRoot, 'models/fghv-demo/fghv-demo.onnx'),
      ].filter((f) => existsSync(f));
      save('torch', () => python('torch.bench.py', [path.join(outDir, 'torch'), ...files], blasEnv()));
    }
    if (sections.includes('ort')) {
      save('ort', () => {
        const torch = JSON.parse(readFileSync(path.join(outDir, 'torch.json'), 'utf8')).data as {
          files: { onnx: string }[];
          backbones: { onnx: string; runs: number }[];
        };
        const out = path.join(outDir, 'ort-run.json');
        const rows: unknown[] = [];
        const small = [
          ...torch.files.map((f) => f.onnx),
          path.join(packageRoot, 'models/fghv-demo/fghv-demo.fp16.onnx'),
          ...torch.backbones.filter((b) => b.runs > 5).map((b) => b.onnx),
        ];
        const big = torch.backbones.filter((b) => b.runs <= 5);
        for (const [models, runs] of [[small, 30], ...big.map((b) => [[b.onnx], b.runs] as const)] as const) {
          execFileSync(
            process.execPath,
            [path.join(here, 'ort-models.js'), out, String(runs), '1,2', ...models],
            {
              stdio: ['ignore', 'inherit', 'inherit'],
            },
          );
          rows.push(...JSON.parse(readFileSync(out, 'utf8')));
        }
        return rows;
      });
    }
    if (sections.includes('gemm')) {
      save('gemm', () => python('gemm.bench.py', [], blasEnv()));
    }
    if (sections.includes('soak')) {
      save('soak', () => {
        const r = runPipeline(
          {
            ...base,
            frames: soakFrames,
            loop: true,
            warmupFrames: Math.min(2000, Math.ceil(soakFrames / 10)),
            sampleEvery: Math.max(100, Math.round(soakFrames / 200)),
            video: video640,
            detector: 'blazeface',
            detectorModel: DETECTORS[0].model,
            manifest: manifests['fghv-demo'],
          },
          6 * 3600,
        );
        return { requestedFrames: soakFrames, result: r };
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (a.get('render') !== 'no') renderReport(outDir, path.join(packageRoot, 'bench'));
}

main();
