/**
 * The controller: owns start and stop of every component. Stop is the exact reverse of start,
 * and a start that fails part-way undoes what it did. No signal handling here (see run.ts).
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { configHash } from '../config/config-hash.js';
import { packageRoot } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ErrorCodes, KioskError } from '../core/errors.js';
import { type Logger, redactSecrets } from '../core/log.js';
import { createSupervisedCamera, type SupervisedCamera } from '../drivers/camera/index.js';
import { daemonCommandTarget } from './contract/commands/daemon-target.js';
import { ContractLink, linkOptionsFromConfig } from './contract/contract-link.js';
import { ContractServices, contractCapabilities } from './contract/contract-services.js';
import { decisionInput, monoToIso } from './contract/decision-input.js';
import { SeqCounter } from './contract/seq-counter.js';
import {
  type CameraRecoveryFigures,
  CONTRACT_VERSION,
  type DecisionPayload,
  type GuidancePayload,
  type InfoPayload,
} from './contract/topics.js';
import type { GuidanceState } from './decision/guidance.js';
import type { SessionDecision } from './decision/types.js';
import { detectorOptions } from './detect/index.js';
import type { FaceDetector } from './detect/types.js';
import { DaemonDrill } from './drill/daemon-drill.js';
import type { InferenceWorker } from './inference/inference-worker.js';
import type { LivenessModel } from './liveness/liveness-model.js';
import { openInferenceStack } from './models/inference-stack.js';
import { commitInstalled } from './models/model-install.js';
import { prepareModel } from './models/model-update.js';
import { resolveDeviceId } from './mqtt/device-id.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './mqtt/embedded-broker.js';
import { redactUrl } from './mqtt/mqtt-link.js';
import { CameraPipeline, type CameraState, type FrameResult, type Stage } from './pipeline/pipeline.js';
import { StatusServer } from './status/status-server.js';
import { cameraRecoveryFigures, HealthReporter } from './telemetry/health.js';
import { StageLatencies } from './telemetry/latency.js';

export interface DaemonEvents {
  decision: [payload: DecisionPayload];
  frame: [result: FrameResult];
  camera: [event: { cameraId: string; state: CameraState; error: string | null }];
  /** A `restart` or `reload_config` command: run.ts stops and exits with RESTART_EXIT_CODE. */
  restart: [];
}

export interface DaemonOptions {
  config: Config;
  log: Logger;
  version: string;
  /** The config file `reload_config` reads again (null: defaults and environment only). */
  configFile?: string | null;
  /** Called for every decision after it was handed to MQTT (tests, embedding). */
  onDecision?: (payload: DecisionPayload) => void;
}

type Undo = () => Promise<unknown> | unknown;

interface StartStep {
  name: string;
  run: () => Promise<void>;
  undo?: Undo | Undo[];
}

interface CameraSlot {
  id: string;
  pipeline: CameraPipeline;
  camera: SupervisedCamera;
  state: CameraState;
  lastError: string | null;
}

export class Daemon extends EventEmitter<DaemonEvents> {
  private worker: InferenceWorker | null = null;
  private detector: FaceDetector | null = null;
  private liveness: LivenessModel | null = null;
  private broker: EmbeddedBroker | null = null;
  private link: ContractLink | null = null;
  private health: HealthReporter | null = null;
  private status: StatusServer | null = null;
  private seq: SeqCounter | null = null;
  private readonly cameras: CameraSlot[] = [];
  private readonly stages = new StageLatencies();
  private lastRates: {
    at: number;
    totals: { captured: number; delivered: number; dropped: number; processed: number }[];
  } | null = null;
  deviceId = '';
  private stopped = false;
  private contract: ContractServices | null = null;
  /** Set by stop(); start checks it between steps and gives up at the first one it reaches. */
  private readonly abort = new AbortController();
  /** The start in progress (or done); stop() waits for it to reach a step boundary. */
  private starting: Promise<void> | null = null;

  constructor(private readonly opts: DaemonOptions) {
    super();
  }

  get info(): InfoPayload {
    const { config } = this.opts;
    const m = this.liveness?.info;
    const overrides = this.liveness ? this.liveness.thresholds.overrides() : {};
    return {
      v: CONTRACT_VERSION,
      device_id: this.deviceId,
      software: { name: 'fghv-kiosk', version: this.opts.version },
      model: m
        ? { name: m.name, version: m.version, sha256: m.sha256, family: m.family, purpose: m.purpose }
        : null,
      detector: this.detector ? { name: this.detector.name, model: config.detector.model } : null,
      execution_provider: this.liveness?.provider ?? null,
      cameras: config.cameras.map((c) => ({ id: c.id, kind: c.kind, source: redactSecrets(c.source) })),
      decision_public_key: this.contract?.signer.publicKey ?? null,
      capabilities: contractCapabilities(config.commands),
      config_hash: configHash(config, overrides),
      threshold_overrides: Object.keys(overrides).length ? overrides : null,
      broker: this.link?.broker ?? null,
      // What the overrides are measured against (a fleet console flags loosened ones).
      model_thresholds: this.liveness ? { ...this.liveness.thresholds.floor } : null,
    };
  }

  /**
   * Start is a list of steps (startPlan), each with the undo of what it built (zigbee2mqtt's
   * controller does the same). A stop that arrives during start (a SIGTERM during model
   * warm-up) lets the current step finish, start gives up before the next one, and stop()
   * undoes everything in reverse order: stop order follows from start order.
   */
  async start(): Promise<void> {
    this.starting = this.startSteps();
    try {
      await this.starting;
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  /** Throws KIOSK_E_START_CANCELLED when a stop arrived; called between start steps. */
  private checkAbort(next: string): void {
    if (this.abort.signal.aborted)
      throw new KioskError(ErrorCodes.START_CANCELLED, `start cancelled by a stop request before: ${next}`, {
        details: { next },
      });
  }

  /** A part an earlier step built (start runs in order, so a missing one is a bug). */
  private need<T>(part: T | null, name: string): T {
    if (part === null) throw new KioskError(ErrorCodes.INTERNAL, `start: ${name} missing`);
    return part;
  }

  /**
   * The start, step by step, in order, each with the undo of what it built. start() runs the
   * steps forward and checks for a stop before each; stop() runs every undo backward. Undos
   * are null-safe (a step that never ran built nothing), so stop order follows from this list.
   */
  private startPlan(): StartStep[] {
    const { config, log } = this.opts;
    let url: string | readonly string[] | null = config.mqtt.url;
    return [
      {
        name: 'state',
        run: async () => {
          mkdirSync(config.device.state_dir, { recursive: true });
          this.deviceId = resolveDeviceId({
            configured: config.device.id,
            stateDir: config.device.state_dir,
          }).id;
          this.seq = new SeqCounter(config.device.state_dir);
          this.contract = new ContractServices(config, this.deviceId, log);
        },
      },
      // Inference first: a model that cannot load must refuse to start before anything is announced.
      {
        name: 'inference stack',
        run: async () => {
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
                {
                  model: m.name,
                  version: m.version,
                  family: m.family,
                  sha256: m.sha256,
                  provider: live.provider,
                },
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
            checkpoint: (next) => this.checkAbort(next),
          });
          this.worker = stack.worker;
          this.liveness = stack.liveness;
          this.detector = stack.detector;
          log.info({ detector: stack.detector.name }, 'models loaded and warmed up');
        },
        // The liveness model may have been replaced since (model_update): close the one in use.
        undo: [() => this.detector?.close(), () => this.liveness?.close(), () => this.worker?.close()],
      },
      {
        name: 'embedded broker',
        run: async () => {
          if (url !== null) return;
          const b = await startEmbeddedBroker(
            config.mqtt.embedded_host,
            config.mqtt.embedded_port,
            config.mqtt.embedded_broker,
          );
          this.broker = b;
          url = b.url;
          log.info({ url, broker: b.kind }, `embedded MQTT broker (${b.kind}) listening on ${url}`);
          if (b.protocolVersion < 5)
            log.warn(
              { broker: b.kind },
              'the embedded broker speaks MQTT 3.1.1 only: decisions carry no message expiry there (only expires_at); install mosquitto for MQTT 5',
            );
        },
        undo: () => this.broker?.close(),
      },
      {
        name: 'MQTT link',
        run: async () => {
          if (url === null) throw new KioskError(ErrorCodes.INTERNAL, 'no broker URL');
          const link = new ContractLink(linkOptionsFromConfig(config.mqtt, this.deviceId, url, { log }));
          this.link = link;
          this.need(this.contract, 'contract').attach(
            link,
            this.need(this.seq, 'seq'),
            daemonCommandTarget({
              config,
              configFile: this.opts.configFile ?? null,
              liveness: () => this.liveness,
              health: () => this.health,
              updateModel: (model, manifest, sig) => this.updateModel(model, manifest, sig),
              infoChanged: () => this.link?.setInfo(this.info),
              log,
              audit: (event, details) => this.contract?.event(event, details),
              restart: () => this.emit('restart'),
              verify: (cameraId, timeoutMs, signed) => this.verifyNow(cameraId, timeoutMs, signed),
            }),
            () => this.info,
          );
          link.setInfo(this.info);
          // info names the broker in use: updated on each connect, before it is republished there.
          link.on('broker', () => link.setInfo(this.info));
          link.start();
          log.info(
            { url: [url].flat().map(redactUrl), device: this.deviceId },
            `MQTT: publishing under ${config.mqtt.prefix}/${this.deviceId}/`,
          );
        },
        // The link closes first (publishing `offline`), then the contract services and the
        // audit store: publishes in flight settle (an ack marks the record delivered) while
        // the store is still open; what stays unacknowledged remains pending in the store and
        // is replayed on the next start.
        undo: [() => this.link?.close(), () => this.contract?.close()],
      },
      {
        name: 'cameras',
        run: async () => {
          for (const cam of config.cameras) {
            this.checkAbort(`camera ${cam.id}`);
            const slot: CameraSlot = {
              id: cam.id,
              state: 'starting',
              lastError: null,
              pipeline: null as unknown as CameraPipeline,
              // Supervised: a lost source is watched for and reopened when back; the daemon stays up.
              camera: createSupervisedCamera(cam, {
                repoRoot: packageRoot,
                onEvent: (ev) => slot.pipeline.sourceChanged(ev),
              }),
            };
            slot.pipeline = new CameraPipeline({
              cameraId: cam.id,
              camera: slot.camera,
              detector: this.need(this.detector, 'detector'),
              liveness: this.need(this.liveness, 'liveness model'),
              config,
              log: log.child({ camera: cam.id }),
              stages: {
                record: (stage: Stage, ms: number) => {
                  this.stages.record(stage, ms);
                  this.status?.metrics.observeStage(stage, ms);
                },
              },
              decideFrom: config.detector.score_threshold,
              sceneGate: config.scene_gate,
              decode: cam.decode,
              onDecision: (d) => this.publishDecision(d),
              onState: (state, err) => {
                slot.state = state;
                slot.lastError = err ? err.message : null;
                this.emit('camera', { cameraId: cam.id, state, error: slot.lastError });
                this.contract?.cameraState(cam.id, state, slot.lastError);
              },
              onFrame: (r) => {
                if (this.listenerCount('frame') > 0) this.emit('frame', r);
              },
              onGuidance: (state, faces, presence) => {
                const wall = Date.now();
                const mono = performance.now();
                const iso = (at: number | undefined) =>
                  at === undefined ? undefined : monoToIso(at, mono, wall);
                const payload: GuidancePayload = {
                  v: CONTRACT_VERSION,
                  ts: new Date(wall).toISOString(),
                  device_id: this.deviceId,
                  camera_id: cam.id,
                  state,
                  faces,
                  ...(presence.presenceSinceMono === undefined
                    ? {}
                    : { presence_since: iso(presence.presenceSinceMono) }),
                  ...(presence.heldSinceMono === undefined
                    ? {}
                    : { held_since: iso(presence.heldSinceMono) }),
                };
                if (this.link)
                  void this.link.publish({
                    topic: this.link.topics.guidance(cam.id),
                    payload: JSON.stringify(payload),
                    qos: 0,
                    retain: true,
                  });
              },
            });
            this.cameras.push(slot);
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
        // Each pipeline finishes the frame in flight and answers open sessions; a camera that
        // fails to stop is not a shutdown failure.
        undo: async () => {
          for (const c of [...this.cameras].reverse()) await c.pipeline.stop().catch(() => undefined);
        },
      },
      {
        name: 'health',
        run: async () => {
          this.health = new HealthReporter({
            intervalS: config.mqtt.health_interval_s,
            sink: this.need(this.link, 'MQTT link'),
            outbox: () => this.contract?.outboxFigures() ?? null,
            deviceId: this.deviceId,
            pipeline: () => this.pipelineFigures(),
            onError: (err) => log.warn({ err }, 'health report failed'),
          });
          this.rates(); // the baseline, so the first health message has real rates (over its first interval)
          await this.health.start();
        },
        undo: () => this.health?.stop(),
      },
      {
        name: 'status page',
        run: async () => {
          if (!config.status.enabled) return;
          this.status = await StatusServer.start({
            config: config.status,
            daemon: this,
            log: log.child({ component: 'status' }),
            cameraTotals: () =>
              this.cameras.map((c) => ({
                camera: c.id,
                ...c.pipeline.cameraStats(),
                processed: c.pipeline.counters.processed,
                stale: c.pipeline.counters.stale,
                gated: c.pipeline.counters.gated,
              })),
            mqttCounters: () => this.link?.counters() ?? null,
            auditBacklog: () => this.contract?.outboxFigures().pending ?? null,
            drill: new DaemonDrill({
              config,
              log: log.child({ component: 'drill' }),
              software: `fghv-kiosk ${this.opts.version}`,
              liveness: () => this.liveness,
              detectorName: () => this.detector?.name ?? null,
              events: this,
              pipeline: (id) => this.cameras.find((c) => c.id === id)?.pipeline ?? null,
            }),
          });
        },
        undo: () => this.status?.close(),
      },
    ];
  }

  private async startSteps(): Promise<void> {
    for (const step of this.startPlan()) {
      this.checkAbort(step.name);
      await step.run();
    }
  }

  /** The status page's URL with the port actually bound; null when disabled or not started. */
  get statusUrl(): string | null {
    return this.status?.url ?? null;
  }

  private updating = false;

  /**
   * Replace the liveness model while running: verify and stage, load, warm up and self-test
   * the new model beside the old one, then switch every pipeline between two frames and record
   * it as current (the old one is kept as previous). Any failure leaves the old model serving
   * and rethrows. Decisions continue throughout.
   */
  async updateModel(modelPath: string, manifestPath: string, signature?: string | null) {
    const { config, log } = this.opts;
    if (!this.worker || !this.liveness || this.stopped)
      throw new KioskError(ErrorCodes.MODEL_UPDATE_FAILED, 'the daemon is not running');
    if (this.updating)
      throw new KioskError(ErrorCodes.MODEL_UPDATE_FAILED, 'another model update is in progress');
    this.updating = true;
    try {
      const { model, staged } = await prepareModel(this.worker, config, {
        modelFile: modelPath,
        manifestFile: manifestPath,
        signature: signature ?? null,
      });
      const old = this.liveness;
      for (const c of this.cameras) c.pipeline.setLiveness(model);
      this.liveness = model;
      commitInstalled(config.device.state_dir, staged);
      this.link?.setInfo(this.info);
      // A frame that began with the old model finishes with it; only then is it released.
      await Promise.all(this.cameras.map((c) => c.pipeline.frameDone()));
      await old.close();
      log.info(
        { from: old.info.sha256, to: model.info.sha256, model: model.info.name, version: model.info.version },
        `liveness model switched to ${model.info.name} ${model.info.version}`,
      );
      return model.info;
    } catch (err) {
      log.error(
        { err },
        `model update failed, ${this.liveness.info.name} keeps serving: ${(err as Error).message}`,
      );
      throw err;
    } finally {
      this.updating = false;
    }
  }

  /** Frame rates since the previous call (one health interval), summed over cameras. */
  private rates(): { capture: number; processed: number; dropped: number; perCamera: number[] } {
    const now = performance.now();
    const totals = this.cameras.map((c) => ({
      ...c.pipeline.cameraStats(),
      processed: c.pipeline.counters.processed,
    }));
    const prev = this.lastRates;
    this.lastRates = { at: now, totals };
    const dt = prev ? (now - prev.at) / 1000 : 0;
    const rate = (get: (t: (typeof totals)[number]) => number, i: number) => {
      const before = prev?.totals[i];
      const cur = totals[i];
      if (!before || !cur || dt <= 0) return 0;
      return Math.round(((get(cur) - get(before)) / dt) * 10) / 10;
    };
    const perCamera = totals.map((_, i) => rate((t) => t.captured, i));
    const sum = (get: (t: (typeof totals)[number]) => number) =>
      Math.round(totals.reduce((a, _, i) => a + rate(get, i), 0) * 10) / 10;
    return {
      capture: sum((t) => t.captured),
      processed: sum((t) => t.processed),
      dropped: sum((t) => t.dropped),
      perCamera,
    };
  }

  private pipelineFigures() {
    const { perCamera, ...fps } = this.rates();
    return {
      latency_ms: this.stages.snapshot(),
      fps,
      cameras: this.cameras.map((c, i) => ({
        id: c.id,
        state: c.state,
        capture_fps: perCamera[i] ?? null,
        ...cameraRecoveryFigures(c.camera.recovery()),
      })),
      model: this.liveness
        ? {
            name: this.liveness.info.name,
            version: this.liveness.info.version,
            sha256: this.liveness.info.sha256,
          }
        : null,
      execution_provider: this.liveness?.provider ?? null,
    };
  }

  private async publishDecision(d: SessionDecision): Promise<void> {
    const { log } = this.opts;
    if (!this.link || !this.seq || !this.liveness || !this.contract) return;
    // build -> sign -> durable audit row -> publish (decision topic and audit), in decide().
    const payload = this.contract.decide(
      decisionInput(d, this.liveness.info, this.liveness.provider, performance.now()),
    );
    log.info(
      {
        decision: payload.decision,
        reason: payload.reason,
        camera: payload.camera_id,
        track: payload.track_id,
        seq: payload.seq,
        frames: payload.frames,
        scores: payload.scores,
      },
      `decision ${payload.decision} (${payload.reason}${payload.quality_gate ? `: ${payload.quality_gate}` : ''}) camera=${payload.camera_id} track=${payload.track_id} seq=${payload.seq} frames=${payload.frames.live}/${payload.frames.inferred}/${payload.frames.seen}`,
    );
    this.opts.onDecision?.(payload);
    this.emit('decision', payload);
  }

  /**
   * request/verify. Fleet-signed: the camera's held person is released and its next published
   * decision returned (or `timed_out`). Unsigned: the camera's guidance state only. A release
   * can produce another live `accept` for a person already accepted (a documented gate opens
   * again), so only a fleet signature may ask for one (issue 24, finding 2).
   */
  private async verifyNow(cameraId: string, timeoutMs: number, signed: boolean): Promise<unknown> {
    const slot = this.cameras.find((c) => c.id === cameraId);
    if (!slot) throw new KioskError(ErrorCodes.COMMAND_INVALID, `no camera "${cameraId}" on this device`);
    if (!signed) return { decision: null, signed: false, state: slot.pipeline.guidance };
    let published: DecisionPayload | null = null;
    const seen = (p: DecisionPayload) => {
      if (p.camera_id === cameraId) published ??= p;
    };
    this.on('decision', seen);
    try {
      const d = await slot.pipeline.requestDecision(timeoutMs);
      return d && published ? { decision: published } : { decision: null, timed_out: true };
    } finally {
      this.off('decision', seen);
    }
  }

  /** Counters and per-stage latencies, for benchmarks and the status of `info`. */
  figures(): {
    processed: number;
    model: string;
    provider: string;
    stages: ReturnType<StageLatencies['snapshot']>;
  } {
    return {
      processed: this.cameras.reduce((a, c) => a + c.pipeline.counters.processed, 0),
      model: this.liveness?.info.name ?? 'none',
      provider: this.liveness?.provider ?? 'none',
      stages: this.stages.snapshot(),
    };
  }

  /**
   * The watchdog's question: is every camera pipeline either making progress (a frame
   * finished within `stallMs`) or in a terminal state it reported (ended, failed)? A pipeline
   * stuck inside a stage answers no, so the supervisor restarts the daemon.
   */
  isAlive(stallMs: number, nowMono = performance.now()): boolean {
    return this.cameras.every(
      (c) => c.state !== 'running' || nowMono - c.pipeline.lastProgressMono <= stallMs,
    );
  }

  /** Camera states for status pages and doctor. */
  cameraStates(): ({
    id: string;
    state: CameraState;
    error: string | null;
    guidance: GuidanceState;
  } & CameraRecoveryFigures)[] {
    return this.cameras.map((c) => ({
      id: c.id,
      state: c.state,
      error: c.lastError,
      ...cameraRecoveryFigures(c.camera.recovery()),
      guidance: c.pipeline.guidance,
    }));
  }

  /** Resolves when every camera pipeline has finished (sources ended or failed). */
  async camerasDone(): Promise<void> {
    await Promise.all(this.cameras.map((c) => c.pipeline.done()));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    // A start in progress finishes its current step, then gives up (see start()).
    await this.starting?.catch(() => undefined);
    // Every undo runs even when an earlier one fails (a failed step must not leave the broker,
    // the worker or the store open and the process alive); the first failure is rethrown.
    // Reverse start order (startPlan): status page, health, cameras (frame in flight finished,
    // open sessions answered), MQTT link (`offline`) then contract services and audit store,
    // broker, detector, model, worker.
    const failures: unknown[] = [];
    for (const step of this.startPlan().reverse()) {
      for (const undo of step.undo === undefined ? [] : [step.undo].flat()) {
        try {
          await undo();
        } catch (err) {
          failures.push(err);
        }
      }
    }
    if (failures.length) throw failures[0];
  }
}
