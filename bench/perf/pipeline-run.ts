/**
 * One benchmark run in its own process (so peak RSS and CPU belong to this configuration only):
 * the daemon's camera pipeline (file driver, detector, quality gates, alignment, liveness,
 * fusion) on a video, as fast as it goes, through CameraPipeline's own loop. Measures per-stage
 * latency, per-frame end-to-end time, the time inside the networks (ONNX Runtime run() in the
 * worker), CPU, RSS and event-loop delay. Soak mode loops the video for `frames` frames and
 * samples RSS every `sampleEvery` frames.
 *
 *   node dist/bench/perf/pipeline-run.js '<RunSpec JSON>'
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { validateConfig } from '../../config/load.js';
import { silentLogger } from '../../core/log.js';
import type { DetectorName } from '../../daemon/detect/types.js';
import {
  autoIntraOpThreads,
  DETECTOR_LANE,
  InferenceWorker,
  type OrtSession,
} from '../../daemon/inference/inference-worker.js';
import { CameraPipeline, type Stage } from '../../daemon/pipeline/pipeline.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { OpenCvCapture } from '../../drivers/camera/opencv-capture.js';
import { loadBenchModels } from './bench-models.js';
import { type Percentiles, type RssSample, StreamStats, totalRatio } from './stats.js';

export interface RunSpec {
  video: string;
  detector: DetectorName;
  /** null: the detector's default model. */
  detectorModel: string | null;
  manifest: string;
  /** Stop after this many frames; null: when the video ends. */
  frames: number | null;
  /** Play the video again at its end (soak). */
  loop: boolean;
  /** Frames excluded from the figures (session warm-up, allocator growth). */
  warmupFrames: number;
  /** RSS sample period in frames (0: only at the end). */
  sampleEvery: number;
  /** ONNX Runtime intra-op threads per session (0: auto, the cores shared by the two inference lanes). */
  threads: number;
  /** ONNX Runtime intra-op spinning; absent: the daemon's default (liveness.intra_op_spinning). */
  spinning?: boolean;
  /**
   * Run the liveness model on every face frame, also after the person was decided (the
   * daemon's default decides once per presence and then stops classifying). Absent: true, so
   * the work per frame is the same as the Python reference's (detect + liveness every frame).
   */
  scoreEveryFrame?: boolean;
  /**
   * 'file' (absent): the file driver (OpenCV's FFmpeg backend decodes every frame in full).
   * 'ffmpeg': the driver an MJPEG USB camera is configured with (kind ffmpeg, decode auto):
   * an MJPEG video's JPEG images go to the pipeline undecoded (reduced decode for the
   * detector, full decode only on face frames); every frame delivered (lossless).
   */
  camera?: 'file' | 'ffmpeg';
  /** camera 'ffmpeg': the pipeline's `decode` (cameras[].decode); absent: 'auto'. */
  decode?: 'auto' | 'reduced';
  out: string;
}

export interface RunResult {
  spec: RunSpec;
  frames: number;
  measuredFrames: number;
  faces: number;
  inferences: number;
  decisions: number;
  seconds: number;
  fps: number;
  stages: Record<string, Percentiles>;
  /** Wall time per frame (capture wait + processing) and time inside the networks per frame. */
  frameMs: Percentiles;
  networkMs: Percentiles;
  /** Time inside each model per measured frame (mean ms): the detector's lane and the liveness lane. */
  networkMeanMs: { detect: number; liveness: number };
  /** Process CPU time per measured frame (ms): decode, both networks, and everything else. */
  cpuPerFrameMs: number;
  /** ONNX Runtime intra-op threads per session as loaded (after `threads: 0` = auto). */
  intraOpThreads: number;
  /**
   * CPU time per measured frame (ms), from /proc/self/task (Linux): the main thread (event loop:
   * pipeline, tensors, OpenCV calls made synchronously) and every other thread together (video
   * decode on libuv's pool, the inference lanes, V8's GC). Node 20 names all its threads "node",
   * so the others cannot be told apart by name.
   */
  threadCpuMsPerFrame: Record<string, number>;
  overhead: number | null;
  /** Same ratio without the capture wait (video decode), i.e. the pipeline's own processing. */
  overheadExclCapture: number | null;
  cpuPct: number;
  peakRssMiB: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  rss: RssSample[];
  detectorProvider: string;
  model: string;
  /** ONNX Runtime intra-op spinning as used. */
  spinning: boolean;
  /** The glibc malloc variables (MALLOC_*) this process started with. */
  mallocEnv: Record<string, string>;
}

/** CPU time (ms) of each thread of this process, keyed "tid:name" (Linux /proc; {} elsewhere). */
function threadCpuMs(): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[`${tid}:${name}`] = (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 10 ms ticks
    } catch {
      // the thread ended
    }
  }
  return out;
}

function perFrameByRole(
  a: Record<string, number>,
  b: Record<string, number>,
  frames: number,
): Record<string, number> {
  const mainTid = String(process.pid);
  const out: Record<string, number> = {};
  for (const [key, ms] of Object.entries(b)) {
    const role = key.split(':')[0] === mainTid ? 'main' : 'other threads';
    out[role] = (out[role] ?? 0) + (ms - (a[key] ?? 0));
  }
  for (const k of Object.keys(out)) out[k] = Math.round(((out[k] as number) / frames) * 100) / 100;
  return out;
}

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

function memory(frame: number): RssSample {
  const m = process.memoryUsage();
  return { frame, rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed) };
}

/**
 * A worker whose sessions add the time spent in run() (measured in the worker) to `bucket.ms`,
 * and to the detector's or the liveness model's share by the lane the session was loaded in.
 */
function timedWorker(
  worker: InferenceWorker,
  bucket: { ms: number; detect: number; liveness: number },
): InferenceWorker {
  const proxy = Object.create(worker) as InferenceWorker;
  proxy.load = async (path, options) => {
    const s = await worker.load(path, options);
    const kind = (options?.lane ?? DETECTOR_LANE) === DETECTOR_LANE ? 'detect' : 'liveness';
    const timed: OrtSession = {
      ...s,
      run: async (feeds, names) => {
        const r = await s.run(feeds, names);
        bucket.ms += r.ms;
        bucket[kind] += r.ms;
        return r;
      },
    };
    return timed;
  };
  return proxy;
}

async function main(spec: RunSpec): Promise<void> {
  const config = validateConfig({ decision: { max_frame_age_ms: 600000 } }, 'bench');
  const spinning = spec.spinning ?? config.liveness.intra_op_spinning;
  const net = { ms: 0, detect: 0, liveness: 0 };
  let net0 = { ...net };
  const worker = InferenceWorker.start();
  const w = timedWorker(worker, net);
  const { detector, liveness } = await loadBenchModels(w, { ...spec, spinning }, config);
  const camera =
    spec.camera === 'ffmpeg'
      ? new FfmpegPipeCapture({ id: 'bench', source: spec.video, decode: 'auto', lossless: true })
      : new OpenCvCapture({
          id: 'bench',
          kind: 'file',
          source: spec.video,
          loop: spec.loop,
          realtime: false,
        });
  // Bounded memory whatever the frame count: the soak measures the pipeline, not this harness.
  const stageSamples: Record<string, StreamStats> = {};
  const frameMs = new StreamStats();
  const networkMs = new StreamStats();
  const processMs = new StreamStats(); // frame time without the wait for the next decoded frame
  const rss: RssSample[] = [];
  const eld = monitorEventLoopDelay({ resolution: 1 });
  let n = 0;
  let decisions = 0;
  let last = 0;
  let lastNet = 0;
  let lastCapture = 0;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  let threads0: Record<string, number> = {};
  const pipeline = new CameraPipeline({
    cameraId: 'bench',
    camera,
    detector,
    liveness,
    config,
    ...(spec.decode ? { decode: spec.decode } : {}),
    log: silentLogger(),
    stages: {
      record: (stage: Stage, ms: number) => {
        if (stage === 'capture') lastCapture = ms;
        if (n < spec.warmupFrames) return;
        const samples = stageSamples[stage] ?? new StreamStats();
        samples.record(ms);
        stageSamples[stage] = samples;
      },
    },
    sink: {
      decision: () => {
        decisions++;
      },
    },
    onFrame: () => {
      const now = performance.now();
      n++;
      if (n === spec.warmupFrames) {
        threads0 = threadCpuMs();
        t0 = now;
        cpu0 = process.cpuUsage();
        net0 = { ...net };
        eld.enable();
      } else if (n > spec.warmupFrames) {
        frameMs.record(now - last);
        networkMs.record(net.ms - lastNet);
        processMs.record(now - last - lastCapture);
      }
      last = now;
      lastNet = net.ms;
      if (spec.sampleEvery > 0 && n % spec.sampleEvery === 0) rss.push(memory(n));
      if (spec.frames !== null && n >= spec.frames) void pipeline.stop();
    },
  });
  pipeline.scoreHeldFaces = spec.scoreEveryFrame ?? true;
  last = performance.now();
  await pipeline.start();
  await pipeline.done();
  const seconds = (last - t0) / 1000;
  eld.disable();
  const cpu = process.cpuUsage(cpu0);
  const threads1 = threadCpuMs();
  rss.push(memory(n));
  await pipeline.stop();
  await detector.close();
  await liveness.close();
  await worker.close();
  const measured = frameMs.n;
  const stages: Record<string, Percentiles> = {};
  for (const [k, v] of Object.entries(stageSamples)) stages[k] = v.percentiles();
  const result: RunResult = {
    spec,
    frames: n,
    measuredFrames: measured,
    faces: pipeline.counters.faces,
    inferences: pipeline.counters.inferences,
    decisions,
    seconds: Math.round(seconds * 100) / 100,
    fps: Math.round((measured / seconds) * 10) / 10,
    stages,
    frameMs: frameMs.percentiles(),
    networkMs: networkMs.percentiles(),
    networkMeanMs: {
      detect: Math.round(((net.detect - net0.detect) / measured) * 1000) / 1000,
      liveness: Math.round(((net.liveness - net0.liveness) / measured) * 1000) / 1000,
    },
    cpuPerFrameMs: Math.round(((cpu.user + cpu.system) / 1000 / measured) * 1000) / 1000,
    intraOpThreads: autoIntraOpThreads(spec.threads),
    threadCpuMsPerFrame: perFrameByRole(threads0, threads1, measured),
    overhead: totalRatio(frameMs.total, networkMs.total),
    overheadExclCapture: totalRatio(processMs.total, networkMs.total),
    cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 1000) / 10,
    peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
    eventLoopDelayMs: {
      p50: Math.round(eld.percentile(50) / 1e4) / 100,
      p99: Math.round(eld.percentile(99) / 1e4) / 100,
      max: Math.round(eld.max / 1e4) / 100,
    },
    rss,
    detectorProvider: detector.provider,
    model: liveness.info.name,
    spinning,
    mallocEnv: Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('MALLOC_') && !!e[1]),
    ),
  };
  writeFileSync(spec.out, `${JSON.stringify(result)}\n`);
  console.log(
    `${spec.detector} + ${result.model}: ${result.fps} fps, ${measured} frames, net ${networkMs.total.toFixed(0)} ms, overhead ${result.overhead}`,
  );
}

await main(JSON.parse(process.argv[2] ?? '{}') as RunSpec);
