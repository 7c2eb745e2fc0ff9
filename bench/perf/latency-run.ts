/**
 * Latency a person feels (bench/performance.md): the time from the first camera frame that
 * shows a face to the decision arriving at a gate subscribed on a real broker (mosquitto).
 * The daemon's camera pipeline plays `presenceVideo` in real time (a camera delivering `fps`
 * frames a second, newest frame wins) with the daemon's default decision rules (5 frames per
 * session, one decision per presence); each decision is published at QoS 1 as JSON and a
 * second MQTT client records when it arrives. Both clocks are this process's monotonic clock.
 *
 * The face's appearance time is when the pump read frame `appearAt` (frames are read on a
 * fixed schedule, so a frame the pipeline dropped is placed on that schedule).
 *
 *   node dist/bench/perf/latency-run.js '<LatencySpec JSON>'
 */
import { writeFileSync } from 'node:fs';
import { connectAsync } from 'mqtt';
import { validateConfig } from '../../config/load.js';
import { silentLogger } from '../../core/log.js';
import type { DetectorName } from '../../daemon/detect/types.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { CameraPipeline } from '../../daemon/pipeline/pipeline.js';
import { OpenCvCapture } from '../../drivers/camera/opencv-capture.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { loadBenchModels } from './bench-models.js';
import { type Percentiles, StreamStats } from './stats.js';

export interface LatencySpec {
  video: string;
  fps: number;
  appearAt: number[];
  detector: DetectorName;
  detectorModel: string | null;
  manifest: string;
  /** Run with the daemon's scene gate (scene_gate defaults); absent: off (the figures before it). */
  sceneGate?: boolean;
  out: string;
}

export interface PresenceLatency {
  presence: number;
  decision: string;
  reason: string;
  /** Face appears -> decision handed to the MQTT client (ms). */
  toPublishMs: number;
  /** Face appears -> decision received by the subscriber (ms). */
  toArrivalMs: number;
  /** Frames the session saw before deciding. */
  framesSeen: number;
  /**
   * Scene gate: the gate skipped at least one of the 15 frames (0.5 s at 30 fps) before the face
   * appeared, so it was idle when the person stepped in (what the wake-up latency is about).
   */
  gateIdleBefore: boolean;
}

export interface LatencyResult {
  spec: LatencySpec;
  presences: PresenceLatency[];
  /** Presences that got no decision while the face was in view. */
  missed: number;
  toArrivalMs: Percentiles;
  toPublishMs: Percentiles;
  /** Frames read / processed / dropped by the newest-frame-wins camera slot. */
  captured: number;
  processed: number;
  dropped: number;
  /** Frames the scene gate let pass without detection. */
  gated: number;
}

async function main(spec: LatencySpec): Promise<void> {
  const broker = await startMosquitto();
  const config = validateConfig({}, 'bench');
  const worker = InferenceWorker.start();
  const { detector, liveness } = await loadBenchModels(
    worker,
    { ...spec, threads: config.liveness.intra_op_threads, spinning: config.liveness.intra_op_spinning },
    config,
  );
  const publisher = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  const gate = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  const arrivals = new Map<string, number>();
  gate.on('message', (_topic, payload) => {
    const id = (JSON.parse(payload.toString()) as { id: string }).id;
    arrivals.set(id, performance.now());
  });
  await gate.subscribeAsync('bench/decision', { qos: 1 });

  const camera = new OpenCvCapture({
    id: 'bench',
    kind: 'file',
    source: spec.video,
    loop: false,
    realtime: true,
  });
  const intervalMs = 1000 / spec.fps;
  /** Read time of frame index 0 on the pump's schedule, from the first processed frame. */
  let origin: number | null = null;
  const published: { id: string; atMono: number; decision: string; reason: string; frames: number }[] = [];
  let n = 0;
  /** Frame indexes (seq - 1) the scene gate skipped. */
  const gatedIndex = new Set<number>();
  let lastGated = 0;
  let pipelineRef: CameraPipeline | null = null;
  const pipeline = new CameraPipeline({
    cameraId: 'bench',
    camera,
    detector,
    liveness,
    config,
    log: silentLogger(),
    decideFrom: config.detector.score_threshold,
    stages: { record() {} },
    ...(spec.sceneGate ? { sceneGate: config.scene_gate } : {}),
    onFrame: ({ frame }) => {
      origin ??= frame.capturedMono - (frame.seq - 1) * intervalMs;
      const g = pipelineRef?.counters.gated ?? 0;
      if (g > lastGated) gatedIndex.add(frame.seq - 1);
      lastGated = g;
    },
    sink: {
      decision: async (d) => {
        const id = `d${++n}`;
        const atMono = performance.now();
        published.push({ id, atMono, decision: d.decision, reason: d.reason, frames: d.frames.seen });
        await publisher.publishAsync('bench/decision', JSON.stringify({ id, decision: d.decision }), {
          qos: 1,
        });
      },
    },
  });
  pipelineRef = pipeline;
  await pipeline.start();
  await pipeline.done();
  await pipeline.stop();
  await new Promise((r) => setTimeout(r, 500)); // the last arrivals
  const stats = camera.stats();
  const o = origin ?? 0;
  const appear = spec.appearAt.map((i) => o + i * intervalMs);
  const presences: PresenceLatency[] = [];
  const toArrival = new StreamStats();
  const toPublish = new StreamStats();
  for (const [i, t] of appear.entries()) {
    const end = appear[i + 1] ?? Number.POSITIVE_INFINITY;
    const first = published.find((p) => p.atMono >= t && p.atMono < end);
    if (!first) continue;
    const arrived = arrivals.get(first.id);
    if (arrived === undefined) continue;
    const row: PresenceLatency = {
      presence: i,
      decision: first.decision,
      reason: first.reason,
      toPublishMs: Math.round((first.atMono - t) * 10) / 10,
      toArrivalMs: Math.round((arrived - t) * 10) / 10,
      framesSeen: first.frames,
      gateIdleBefore: Array.from({ length: 15 }, (_, k) => (spec.appearAt[i] as number) - 1 - k).some((f) =>
        gatedIndex.has(f),
      ),
    };
    presences.push(row);
    toArrival.record(row.toArrivalMs);
    toPublish.record(row.toPublishMs);
  }
  const result: LatencyResult = {
    spec,
    presences,
    missed: spec.appearAt.length - presences.length,
    toArrivalMs: toArrival.percentiles(),
    toPublishMs: toPublish.percentiles(),
    captured: stats.captured,
    processed: pipeline.counters.processed,
    dropped: stats.dropped,
    gated: pipeline.counters.gated,
  };
  await detector.close();
  await liveness.close();
  await worker.close();
  await publisher.endAsync();
  await gate.endAsync();
  await broker.stop();
  writeFileSync(spec.out, `${JSON.stringify(result)}\n`);
  console.log(
    `${spec.detector} + ${liveness.info.name}: face -> decision on MQTT p50 ${result.toArrivalMs.p50} ms, p95 ${result.toArrivalMs.p95} ms (${presences.length} of ${spec.appearAt.length} presences decided)`,
  );
}

await main(JSON.parse(process.argv[2] ?? '{}') as LatencySpec);
