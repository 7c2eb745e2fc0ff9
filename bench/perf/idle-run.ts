/**
 * What an empty kiosk costs (bench/performance.md, "Idle kiosk"): the daemon's camera pipeline
 * with its default models and decision rules plays a video of an empty room followed by a person
 * (`presenceVideo` with one presence) in real time, as a camera delivers it (newest frame wins),
 * with or without the scene gate. The process's CPU time (process.cpuUsage(): every thread, the
 * video decoding included) is sampled every 100 ms and integrated over a window of the empty
 * part and a window of the person's part. A window runs from the read time of its first frame
 * to that of the first frame after it (frames the pipeline finished; on a loaded machine the
 * file's real-time pacing can fall behind the clock, so the windows follow the frames, not the
 * clock), and its CPU is divided by that wall time. CPU time, unlike wall time, hardly depends
 * on what else the machine runs.
 *
 *   node dist/bench/perf/idle-run.js '<IdleSpec JSON>'
 */
import { writeFileSync } from 'node:fs';
import { validateConfig } from '../../config/load.js';
import { silentLogger } from '../../core/log.js';
import type { DetectorName } from '../../daemon/detect/types.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { CameraPipeline } from '../../daemon/pipeline/pipeline.js';
import type { SceneGateConfig } from '../../daemon/pipeline/scene-gate.js';
import { FfmpegPipeCapture } from '../../drivers/camera/ffmpeg-pipe.js';
import { OpenCvCapture } from '../../drivers/camera/opencv-capture.js';
import { loadBenchModels } from './bench-models.js';

export interface IdleSpec {
  video: string;
  fps: number;
  /** Seconds into the video: [from, to) of the empty part and of the person's part measured. */
  emptyWindow: [number, number];
  personWindow: [number, number];
  /** Second at which the person appears (their decision must come after it). */
  personAt: number;
  sceneGate: boolean;
  /**
   * 'file' (absent): the file driver, OpenCV decoding every frame in this process. 'ffmpeg':
   * an MJPEG camera as the daemon reads one (kind ffmpeg, decode auto; ffmpeg `-re` paces the
   * file): JPEG images copied by ffmpeg (its CPU is not in this process's figures), decoded here
   * at the detector's scale, in full only on face frames.
   */
  camera?: 'file' | 'ffmpeg';
  /** Scene gate settings other than the defaults (e.g. idle_fps). */
  gateOverrides?: Partial<SceneGateConfig>;
  detector: DetectorName;
  detectorModel: string | null;
  manifest: string;
  out: string;
}

export interface WindowCpu {
  seconds: number;
  /** Process CPU time in the window, ms. */
  cpuMs: number;
  /** CPU ms per second of wall time (1000 = one core all the time). */
  cpuMsPerS: number;
  /**
   * CPU ms per finished frame: what one camera frame costs whatever the machine's load (a
   * starved pipeline finishes fewer frames a second, which lowers cpuMsPerS but not this).
   */
  cpuMsPerFrame: number;
  /** Frames the pipeline finished in the window, and how many of them the scene gate let pass undetected. */
  processed: number;
  gated: number;
}

export interface IdleResult {
  spec: IdleSpec;
  empty: WindowCpu;
  person: WindowCpu;
  /** empty / person CPU per second, and per finished frame. */
  ratio: number;
  ratioPerFrame: number;
  decisions: { atS: number; decision: string; reason: string }[];
  /** The person got a decision (accept, reject or retry) after appearing. */
  personDecided: boolean;
  captured: number;
  dropped: number;
  gate: ReturnType<CameraPipeline['gateCounters']>;
}

async function main(spec: IdleSpec): Promise<void> {
  const config = validateConfig({}, 'bench');
  const worker = InferenceWorker.start();
  const { detector, liveness } = await loadBenchModels(
    worker,
    { ...spec, threads: config.liveness.intra_op_threads, spinning: config.liveness.intra_op_spinning },
    config,
  );
  const camera =
    spec.camera === 'ffmpeg'
      ? new FfmpegPipeCapture({ id: 'bench', source: `-re -i ${spec.video}`, decode: 'auto' })
      : new OpenCvCapture({
          id: 'bench',
          kind: 'file',
          source: spec.video,
          loop: false,
          realtime: true,
        });
  const samples: { t: number; cpuMs: number }[] = [];
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const sampler = setInterval(() => samples.push({ t: performance.now(), cpuMs: cpuNow() }), 100);
  const frames: { seq: number; t: number; gated: boolean }[] = [];
  const decisions: { atMono: number; decision: string; reason: string }[] = [];
  let gatedBefore = 0;
  const pipeline: CameraPipeline = new CameraPipeline({
    cameraId: 'bench',
    camera,
    detector,
    liveness,
    config,
    log: silentLogger(),
    decideFrom: config.detector.score_threshold,
    stages: { record() {} },
    ...(spec.sceneGate ? { sceneGate: { ...config.scene_gate, ...spec.gateOverrides } } : {}),
    onFrame: ({ frame }) => {
      const g = pipeline.counters.gated;
      frames.push({ seq: frame.seq, t: frame.capturedMono, gated: g > gatedBefore });
      gatedBefore = g;
    },
    sink: {
      decision: (d) => {
        decisions.push({ atMono: performance.now(), decision: d.decision, reason: d.reason });
      },
    },
  });
  samples.push({ t: performance.now(), cpuMs: cpuNow() });
  await pipeline.start();
  await pipeline.done();
  await pipeline.stop();
  clearInterval(sampler);
  const stats = camera.stats();
  /** Read time of the first finished frame at or after second `s` of the video. */
  const frameTime = (s: number): number => {
    const f = frames.find((x) => x.seq - 1 >= s * spec.fps);
    if (!f) throw new Error(`no frame at or after ${s} s: the video is shorter than the windows`);
    return f.t;
  };
  const o = frameTime(0);
  /** CPU ms at monotonic time t, interpolated between samples. */
  const cpuAt = (t: number): number => {
    const i = samples.findIndex((s) => s.t >= t);
    if (i <= 0) return (samples[Math.max(0, i)] ?? { cpuMs: 0 }).cpuMs;
    const a = samples[i - 1] as { t: number; cpuMs: number };
    const b = samples[i] as { t: number; cpuMs: number };
    return a.cpuMs + ((b.cpuMs - a.cpuMs) * (t - a.t)) / Math.max(1e-9, b.t - a.t);
  };
  const window = ([from, to]: [number, number]): WindowCpu => {
    const t0 = frameTime(from);
    const t1 = frameTime(to);
    const cpuMs = cpuAt(t1) - cpuAt(t0);
    const inside = frames.filter((f) => f.t >= t0 && f.t < t1);
    return {
      seconds: Math.round((t1 - t0) / 10) / 100,
      cpuMs: Math.round(cpuMs),
      cpuMsPerS: Math.round((cpuMs / ((t1 - t0) / 1000)) * 10) / 10,
      cpuMsPerFrame: Math.round((cpuMs / Math.max(1, inside.length)) * 100) / 100,
      processed: inside.length,
      gated: inside.filter((f) => f.gated).length,
    };
  };
  const empty = window(spec.emptyWindow);
  const person = window(spec.personWindow);
  // Decision times in seconds of wall time after the first frame (the video's clock if it kept pace).
  const ds = decisions.map((d) => ({
    atS: Math.round(((d.atMono - o) / 1000) * 100) / 100,
    decision: d.decision,
    reason: d.reason,
  }));
  const result: IdleResult = {
    spec,
    empty,
    person,
    ratio: Math.round((empty.cpuMsPerS / person.cpuMsPerS) * 1000) / 1000,
    ratioPerFrame: Math.round((empty.cpuMsPerFrame / person.cpuMsPerFrame) * 1000) / 1000,
    decisions: ds,
    personDecided: decisions.some((d) => d.atMono >= frameTime(spec.personAt)),
    captured: stats.captured,
    dropped: stats.dropped,
    gate: pipeline.gateCounters(),
  };
  await detector.close();
  await liveness.close();
  await worker.close();
  writeFileSync(spec.out, `${JSON.stringify(result)}\n`);
  console.log(
    `scene gate ${spec.sceneGate ? 'on' : 'off'}: empty ${empty.cpuMsPerS} CPU ms/s (${empty.gated} of ${empty.processed} frames gated), person ${person.cpuMsPerS} CPU ms/s (${person.processed} frames), ratio ${result.ratio}; per frame ${empty.cpuMsPerFrame} / ${person.cpuMsPerFrame} ms, ratio ${result.ratioPerFrame}; decisions ${JSON.stringify(ds)}`,
  );
}

await main(JSON.parse(process.argv[2] ?? '{}') as IdleSpec);
