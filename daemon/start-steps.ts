/**
 * The daemon's start, as named steps in order, each with the undo of what it built. The Daemon
 * (daemon.ts) runs them forward, checking for a stop before each, and runs every undo backward
 * on stop or on a failed start; undos are null-safe (a step that never ran built nothing), so
 * stop order follows from START_STEPS. The parts the steps build live in one DaemonParts record
 * that the Daemon owns and queries.
 */
import type { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { packageRoot } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ErrorCodes, KioskError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createSupervisedCamera, type SupervisedCamera } from '../drivers/camera/index.js';
import type { CommandTarget } from './contract/commands/command-server.js';
import { daemonCommandTarget } from './contract/commands/daemon-target.js';
import { ContractLink, linkOptionsFromConfig } from './contract/contract-link.js';
import { ContractSink } from './contract/contract-sink.js';
import type { DecisionPayload } from './contract/payloads.js';
import { SeqCounter } from './contract/seq-counter.js';
import { detectorOptions } from './detect/index.js';
import type { FaceDetector } from './detect/types.js';
import { DaemonDrill } from './drill/daemon-drill.js';
import type { InferenceWorker } from './inference/inference-worker.js';
import type { LivenessModel } from './liveness/liveness-model.js';
import { openInferenceStack } from './models/inference-stack.js';
import { resolveDeviceId } from './mqtt/device-id.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './mqtt/embedded-broker.js';
import { redactUrl } from './mqtt/mqtt-link.js';
import { CameraPipeline, type CameraState, type FrameResult, type Stage } from './pipeline/pipeline.js';
import { type StatusDaemon, StatusServer } from './status/status-server.js';
import { cameraRecoveryFigures, HealthReporter, type PipelineFigures } from './telemetry/health.js';
import type { StageLatencies } from './telemetry/latency.js';

export interface DaemonEvents {
  decision: [payload: DecisionPayload];
  frame: [result: FrameResult];
  camera: [event: { cameraId: string; state: CameraState; error: string | null }];
  /** A `restart` or `reload_config` command: run.ts stops and exits with RESTART_EXIT_CODE. */
  restart: [];
}

export interface CameraSlot {
  id: string;
  pipeline: CameraPipeline;
  camera: SupervisedCamera;
  state: CameraState;
  lastError: string | null;
}

/** What the steps build, in start order; null until its step ran. */
export interface DaemonParts {
  deviceId: string;
  seq: SeqCounter | null;
  /** The contract sink (contract/contract-sink.ts): decisions, guidance, health, info, audit. */
  sink: ContractSink | null;
  worker: InferenceWorker | null;
  /** The model in use (replaced by model_update). */
  liveness: LivenessModel | null;
  detector: FaceDetector | null;
  broker: EmbeddedBroker | null;
  /** mqtt.url, or the embedded broker's once it runs. */
  brokerUrl: string | readonly string[] | null;
  link: ContractLink | null;
  cameras: CameraSlot[];
  health: HealthReporter | null;
  status: StatusServer | null;
}

export function emptyParts(config: Config): DaemonParts {
  return {
    deviceId: '',
    seq: null,
    sink: null,
    worker: null,
    liveness: null,
    detector: null,
    broker: null,
    brokerUrl: config.mqtt.url,
    link: null,
    cameras: [],
    health: null,
    status: null,
  };
}

/** What the steps need from the Daemon: its options, events and the operations commands call. */
export type StepHost = EventEmitter<DaemonEvents> &
  StatusDaemon & {
    updateModel(modelPath: string, manifestPath: string, signature?: string | null): Promise<unknown>;
    verifyNow(cameraId: string, timeoutMs: number, signed: boolean): Promise<unknown>;
  };

export interface StepContext {
  config: Config;
  log: Logger;
  version: string;
  /** The config file `reload_config` reads again (null: defaults and environment only). */
  configFile: string | null;
  /** Called for every decision after it was handed to MQTT (tests, embedding). */
  onDecision?: (payload: DecisionPayload) => void;
  parts: DaemonParts;
  host: StepHost;
  stages: StageLatencies;
  /** Throws KIOSK_E_START_CANCELLED when a stop arrived. */
  checkAbort(next: string): void;
}

type Undo = (ctx: StepContext) => Promise<unknown> | unknown;

export interface StartStep {
  name: string;
  run: (ctx: StepContext) => Promise<void>;
  /** Run in this order on stop, after the undos of every later step. */
  undo: Undo[];
}

/** A part an earlier step built (start runs in order, so a missing one is a bug). */
function need<T>(part: T | null, name: string): T {
  if (part === null) throw new KioskError(ErrorCodes.INTERNAL, `start: ${name} missing`);
  return part;
}

/** Device id, decision sequence, and the contract sink with its key and audit store. */
export const stateStep: StartStep = {
  name: 'state',
  run: async ({ config, log, version, parts }) => {
    mkdirSync(config.device.state_dir, { recursive: true });
    parts.deviceId = resolveDeviceId({ configured: config.device.id, stateDir: config.device.state_dir }).id;
    parts.seq = new SeqCounter(config.device.state_dir);
    parts.sink = new ContractSink({
      config,
      deviceId: parts.deviceId,
      version,
      log,
      models: () => ({ liveness: parts.liveness, detector: parts.detector }),
    });
  },
  // Closed by the MQTT link step's undo (after the link), as the store must outlive the link.
  undo: [],
};

/** Inference first: a model that cannot load must refuse to start before anything is announced. */
export const inferenceStep: StartStep = {
  name: 'inference stack',
  run: async ({ config, log, parts, checkAbort }) => {
    const stack = await openInferenceStack({
      liveness: { device: config, log, fallback: true },
      detector: detectorOptions(config, {
        // Weaker faces are detected too, then reported rather than decided on (pipeline.ts).
        scoreThreshold: Math.min(config.detector.report_threshold, config.detector.score_threshold),
      }),
      warmUp: true,
      onLiveness: (live) => {
        const m = live.info;
        log.info(
          { model: m.name, version: m.version, family: m.family, sha256: m.sha256, provider: live.provider },
          `liveness model ${m.name} ${m.version} on execution provider ${live.provider}`,
        );
        if (m.purpose !== 'production') {
          log.warn(
            { model: m.name, purpose: m.purpose },
            `liveness model ${m.name} is marked purpose: ${m.purpose}: it was not trained and validated on real attack data for production; its decisions must not secure a door`,
          );
        }
      },
      // A stop while the models load cancels the start before the detector or the warm-up.
      checkpoint: checkAbort,
    });
    parts.worker = stack.worker;
    parts.liveness = stack.liveness;
    parts.detector = stack.detector;
    log.info({ detector: stack.detector.name }, 'models loaded and warmed up');
  },
  // The liveness model may have been replaced since (model_update): close the one in use.
  undo: [
    ({ parts }) => parts.detector?.close(),
    ({ parts }) => parts.liveness?.close(),
    ({ parts }) => parts.worker?.close(),
  ],
};

/** Only without mqtt.url: mosquitto if installed, else aedes, on loopback by default. */
export const brokerStep: StartStep = {
  name: 'embedded broker',
  run: async ({ config, log, parts }) => {
    if (parts.brokerUrl !== null) return;
    const b = await startEmbeddedBroker(
      config.mqtt.embedded_host,
      config.mqtt.embedded_port,
      config.mqtt.embedded_broker,
    );
    parts.broker = b;
    parts.brokerUrl = b.url;
    log.info({ url: b.url, broker: b.kind }, `embedded MQTT broker (${b.kind}) listening on ${b.url}`);
    if (b.protocolVersion < 5)
      log.warn(
        { broker: b.kind },
        'the embedded broker speaks MQTT 3.1.1 only: decisions carry no message expiry there (only expires_at); install mosquitto for MQTT 5',
      );
  },
  undo: [({ parts }) => parts.broker?.close()],
};

/** The commands' view of the running daemon (contract/commands/daemon-target.ts). */
function commandTarget({ config, configFile, log, parts, host }: StepContext): CommandTarget {
  return daemonCommandTarget({
    config,
    configFile,
    liveness: () => parts.liveness,
    health: () => parts.health,
    updateModel: (model, manifest, sig) => host.updateModel(model, manifest, sig),
    infoChanged: () => parts.sink?.infoChanged(),
    log,
    audit: (event, details) => parts.sink?.event(event, details),
    restart: () => host.emit('restart'),
    verify: (cameraId, timeoutMs, signed) => host.verifyNow(cameraId, timeoutMs, signed),
  });
}

/** The MQTT link, attached to the contract sink (replay, commands, info) before it connects. */
export const mqttStep: StartStep = {
  name: 'MQTT link',
  run: async (ctx) => {
    const { config, log, parts, host } = ctx;
    const url = parts.brokerUrl;
    if (url === null) throw new KioskError(ErrorCodes.INTERNAL, 'no broker URL');
    const link = new ContractLink(linkOptionsFromConfig(config.mqtt, parts.deviceId, url, { log }));
    parts.link = link;
    const sink = need(parts.sink, 'contract sink');
    sink.connect(link, need(parts.seq, 'seq'), commandTarget(ctx));
    // Observers hear of a decision once it is durable and handed to the link.
    sink.events.on('decision', (payload) => {
      ctx.onDecision?.(payload);
      host.emit('decision', payload);
    });
    link.start();
    log.info(
      { url: [url].flat().map(redactUrl), device: parts.deviceId },
      `MQTT: publishing under ${config.mqtt.prefix}/${parts.deviceId}/`,
    );
  },
  // The link closes first (publishing `offline`), then the contract sink and the audit store:
  // publishes in flight settle (an ack marks the record delivered) while the store is still
  // open; what stays unacknowledged remains pending in the store and is replayed on the next start.
  undo: [({ parts }) => parts.link?.close(), ({ parts }) => parts.sink?.close()],
};

/** One supervised camera and its pipeline per configured camera; a dead one is reported, not fatal. */
export const camerasStep: StartStep = {
  name: 'cameras',
  run: async ({ config, log, parts, host, stages, checkAbort }) => {
    const sink = need(parts.sink, 'contract sink');
    for (const cam of config.cameras) {
      checkAbort(`camera ${cam.id}`);
      // The supervised camera tells its pipeline when its source comes and goes; the pipeline is
      // built right after it, before the camera is opened, so no event can come earlier.
      let pipeline: CameraPipeline | null = null;
      // Supervised: a lost source is watched for and reopened when back; the daemon stays up.
      const camera = createSupervisedCamera(cam, {
        repoRoot: packageRoot,
        onEvent: (ev) => pipeline?.sourceChanged(ev),
      });
      pipeline = new CameraPipeline({
        cameraId: cam.id,
        camera,
        detector: need(parts.detector, 'detector'),
        liveness: need(parts.liveness, 'liveness model'),
        config,
        log: log.child({ camera: cam.id }),
        stages: {
          record: (stage: Stage, ms: number) => {
            stages.record(stage, ms);
            parts.status?.metrics.observeStage(stage, ms);
          },
        },
        decideFrom: config.detector.score_threshold,
        sceneGate: config.scene_gate,
        decode: cam.decode,
        sink,
        onState: (state, err) => {
          slot.state = state;
          slot.lastError = err ? err.message : null;
          host.emit('camera', { cameraId: cam.id, state, error: slot.lastError });
          sink.cameraState(cam.id, state, slot.lastError);
        },
        onFrame: (r) => {
          if (host.listenerCount('frame') > 0) host.emit('frame', r);
        },
      });
      const slot: CameraSlot = { id: cam.id, state: 'starting', lastError: null, pipeline, camera };
      parts.cameras.push(slot);
      try {
        await slot.pipeline.start();
        if (slot.state === 'running')
          log.info({ camera: cam.id, kind: cam.kind, source: cam.source }, `camera ${cam.id} open`);
      } catch (e) {
        // A dead camera is reported, not fatal: the daemon stays up, says so in health, and a
        // supervisor or the reconnection logic can bring it back.
        slot.state = 'failed';
        slot.lastError = e instanceof Error ? e.message : String(e);
        log.error({ camera: cam.id, err: e }, `camera ${cam.id} cannot be opened: ${slot.lastError}`);
      }
    }
  },
  // Each pipeline finishes the frame in flight and answers open sessions; a camera that fails
  // to stop is not a shutdown failure.
  undo: [
    async ({ parts }) => {
      for (const c of [...parts.cameras].reverse()) await c.pipeline.stop().catch(() => undefined);
    },
  ],
};

type Totals = { captured: number; delivered: number; dropped: number; processed: number };

/** Frame rates between two calls (one health interval), summed over cameras. */
export function frameRates(cameras: readonly CameraSlot[]) {
  let last: { at: number; totals: Totals[] } | null = null;
  return (): { capture: number; processed: number; dropped: number; perCamera: number[] } => {
    const now = performance.now();
    const totals = cameras.map((c) => ({
      ...c.pipeline.cameraStats(),
      processed: c.pipeline.counters.processed,
    }));
    const prev = last;
    last = { at: now, totals };
    const dt = prev ? (now - prev.at) / 1000 : 0;
    const rate = (get: (t: Totals) => number, i: number) => {
      const before = prev?.totals[i];
      const cur = totals[i];
      if (!before || !cur || dt <= 0) return 0;
      return Math.round(((get(cur) - get(before)) / dt) * 10) / 10;
    };
    const perCamera = totals.map((_, i) => rate((t) => t.captured, i));
    const sum = (get: (t: Totals) => number) =>
      Math.round(totals.reduce((a, _, i) => a + rate(get, i), 0) * 10) / 10;
    return {
      capture: sum((t) => t.captured),
      processed: sum((t) => t.processed),
      dropped: sum((t) => t.dropped),
      perCamera,
    };
  };
}

/** The pipeline half of `health`: rates, stage latencies, camera states, the model in use. */
function pipelineFigures(parts: DaemonParts, stages: StageLatencies, rates: ReturnType<typeof frameRates>) {
  return (): PipelineFigures => {
    const { perCamera, ...fps } = rates();
    const live = parts.liveness;
    return {
      latency_ms: stages.snapshot(),
      fps,
      cameras: parts.cameras.map((c, i) => ({
        id: c.id,
        state: c.state,
        capture_fps: perCamera[i] ?? null,
        ...cameraRecoveryFigures(c.camera.recovery()),
      })),
      model: live ? { name: live.info.name, version: live.info.version, sha256: live.info.sha256 } : null,
      execution_provider: live?.provider ?? null,
    };
  };
}

/** The periodic `health` report, handed to the contract sink. */
export const healthStep: StartStep = {
  name: 'health',
  run: async ({ config, log, parts, stages }) => {
    const sink = need(parts.sink, 'contract sink');
    const rates = frameRates(parts.cameras);
    parts.health = new HealthReporter({
      intervalS: config.mqtt.health_interval_s,
      sink,
      outbox: () => sink.outboxFigures(),
      deviceId: parts.deviceId,
      pipeline: pipelineFigures(parts, stages, rates),
      onError: (err) => log.warn({ err }, 'health report failed'),
    });
    rates(); // the baseline, so the first health message has real rates (over its first interval)
    await parts.health.start();
  },
  undo: [({ parts }) => parts.health?.stop()],
};

/** The local status page (and the drill it runs), when enabled. */
export const statusStep: StartStep = {
  name: 'status page',
  run: async ({ config, log, version, parts, host }) => {
    if (!config.status.enabled) return;
    parts.status = await StatusServer.start({
      config: config.status,
      daemon: host,
      log: log.child({ component: 'status' }),
      cameraTotals: () =>
        parts.cameras.map((c) => ({
          camera: c.id,
          ...c.pipeline.cameraStats(),
          processed: c.pipeline.counters.processed,
          stale: c.pipeline.counters.stale,
          gated: c.pipeline.counters.gated,
          bad: c.pipeline.counters.badFrames,
        })),
      mqttCounters: () => parts.link?.counters() ?? null,
      auditBacklog: () => parts.sink?.outboxFigures().pending ?? null,
      drill: new DaemonDrill({
        config,
        log: log.child({ component: 'drill' }),
        software: `fghv-kiosk ${version}`,
        liveness: () => parts.liveness,
        detectorName: () => parts.detector?.name ?? null,
        events: host,
        pipeline: (id) => parts.cameras.find((c) => c.id === id)?.pipeline ?? null,
      }),
    });
  },
  undo: [({ parts }) => parts.status?.close()],
};

/** Start order; stop is the exact reverse. */
export const START_STEPS: readonly StartStep[] = [
  stateStep,
  inferenceStep,
  brokerStep,
  mqttStep,
  camerasStep,
  healthStep,
  statusStep,
];
