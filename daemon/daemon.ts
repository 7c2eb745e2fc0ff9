/**
 * The composition root: owns the start and stop of every component. Start runs the named steps
 * of start-steps.ts in order (each with the undo of what it built); stop is the exact reverse,
 * and a start that fails part-way undoes what it did. What remains here is that order, model
 * replacement, and the small queries run.ts, the status page and tests use. Decisions, guidance,
 * health and info leave through the contract sink (contract/contract-sink.ts), never through
 * this file. No signal handling here (see run.ts).
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import { ErrorCodes, KioskError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { contractInfo } from './contract/contract-sink.js';
import type { CameraRecoveryFigures, DecisionPayload, InfoPayload } from './contract/payloads.js';
import type { GuidanceState } from './decision/guidance.js';
import { commitInstalled } from './models/model-install.js';
import { prepareModel } from './models/model-update.js';
import type { CameraState } from './pipeline/pipeline.js';
import {
  type DaemonEvents,
  type DaemonParts,
  emptyParts,
  START_STEPS,
  type StepContext,
} from './start-steps.js';
import { cameraRecoveryFigures } from './telemetry/health.js';
import { StageLatencies } from './telemetry/latency.js';

export type { DaemonEvents } from './start-steps.js';

export interface DaemonOptions {
  config: Config;
  log: Logger;
  version: string;
  /** The config file `reload_config` reads again (null: defaults and environment only). */
  configFile?: string | null;
  /** Called for every decision after it was handed to MQTT (tests, embedding). */
  onDecision?: (payload: DecisionPayload) => void;
}

export class Daemon extends EventEmitter<DaemonEvents> {
  /** What the start steps built (start-steps.ts), null until built. */
  private readonly parts: DaemonParts;
  private readonly stages = new StageLatencies();
  private stopped = false;
  /** Set by stop(); start checks it between steps and gives up at the first one it reaches. */
  private readonly abort = new AbortController();
  /** The start in progress (or done); stop() waits for it to reach a step boundary. */
  private starting: Promise<void> | null = null;

  constructor(private readonly opts: DaemonOptions) {
    super();
    this.parts = emptyParts(opts.config);
  }

  get deviceId(): string {
    return this.parts.deviceId;
  }

  /** The retained `info` as the contract sink builds it (before start: what the config says). */
  get info(): InfoPayload {
    const { parts } = this;
    return (
      parts.sink?.info() ??
      contractInfo(this.opts.config, this.opts.version, {
        deviceId: parts.deviceId,
        models: { liveness: parts.liveness, detector: parts.detector },
        publicKey: null,
        broker: null,
      })
    );
  }

  private context(): StepContext {
    const { config, log, version, configFile, onDecision } = this.opts;
    return {
      config,
      log,
      version,
      configFile: configFile ?? null,
      ...(onDecision ? { onDecision } : {}),
      parts: this.parts,
      host: this,
      stages: this.stages,
      checkAbort: (next) => this.checkAbort(next),
    };
  }

  /**
   * Start is the list of steps START_STEPS (start-steps.ts), each with the undo of what it built
   * (zigbee2mqtt's controller does the same). A stop that arrives during start (a SIGTERM
   * during model warm-up) lets the current step finish, start gives up before the next one, and
   * stop() undoes everything in reverse order: stop order follows from start order.
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

  private async startSteps(): Promise<void> {
    const ctx = this.context();
    for (const step of START_STEPS) {
      this.checkAbort(step.name);
      await step.run(ctx);
    }
  }

  /** The status page's URL with the port actually bound; null when disabled or not started. */
  get statusUrl(): string | null {
    return this.parts.status?.url ?? null;
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
    if (!this.parts.worker || !this.parts.liveness || this.stopped)
      throw new KioskError(ErrorCodes.MODEL_UPDATE_FAILED, 'the daemon is not running');
    if (this.updating)
      throw new KioskError(ErrorCodes.MODEL_UPDATE_FAILED, 'another model update is in progress');
    this.updating = true;
    try {
      const { model, staged } = await prepareModel(this.parts.worker, config, {
        modelFile: modelPath,
        manifestFile: manifestPath,
        signature: signature ?? null,
      });
      const old = this.parts.liveness;
      for (const c of this.parts.cameras) c.pipeline.setLiveness(model);
      this.parts.liveness = model;
      commitInstalled(config.device.state_dir, staged);
      this.parts.sink?.infoChanged();
      // A frame that began with the old model finishes with it; only then is it released.
      await Promise.all(this.parts.cameras.map((c) => c.pipeline.frameDone()));
      await old.close();
      log.info(
        { from: old.info.sha256, to: model.info.sha256, model: model.info.name, version: model.info.version },
        `liveness model switched to ${model.info.name} ${model.info.version}`,
      );
      return model.info;
    } catch (err) {
      log.error(
        { err },
        `model update failed, ${this.parts.liveness.info.name} keeps serving: ${(err as Error).message}`,
      );
      throw err;
    } finally {
      this.updating = false;
    }
  }

  /**
   * request/verify. Fleet-signed: the camera's held person is released and its next published
   * decision returned (or `timed_out`). Unsigned: the camera's guidance state only. A release
   * can produce another live `accept` for a person already accepted (a documented gate opens
   * again), so only a fleet signature may ask for one (issue 24, finding 2).
   */
  async verifyNow(cameraId: string, timeoutMs: number, signed: boolean): Promise<unknown> {
    const slot = this.parts.cameras.find((c) => c.id === cameraId);
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
      processed: this.parts.cameras.reduce((a, c) => a + c.pipeline.counters.processed, 0),
      model: this.parts.liveness?.info.name ?? 'none',
      provider: this.parts.liveness?.provider ?? 'none',
      stages: this.stages.snapshot(),
    };
  }

  /**
   * The watchdog's question: is every camera pipeline either making progress (a frame
   * finished within `stallMs`) or in a terminal state it reported (ended, failed)? A pipeline
   * stuck inside a stage answers no, so the supervisor restarts the daemon.
   */
  isAlive(stallMs: number, nowMono = performance.now()): boolean {
    return this.parts.cameras.every(
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
    return this.parts.cameras.map((c) => ({
      id: c.id,
      state: c.state,
      error: c.lastError,
      ...cameraRecoveryFigures(c.camera.recovery()),
      guidance: c.pipeline.guidance,
    }));
  }

  /** Resolves when every camera pipeline has finished (sources ended or failed). */
  async camerasDone(): Promise<void> {
    await Promise.all(this.parts.cameras.map((c) => c.pipeline.done()));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    // A start in progress finishes its current step, then gives up (see start()).
    await this.starting?.catch(() => undefined);
    // Every undo runs even when an earlier one fails (a failed step must not leave the broker,
    // the worker or the store open and the process alive); the first failure is rethrown.
    // Reverse start order (START_STEPS): status page, health, cameras (frame in flight
    // finished, open sessions answered), MQTT link (`offline`) then the contract sink and its
    // audit store, broker, detector, model, worker.
    const ctx = this.context();
    const failures: unknown[] = [];
    for (const step of [...START_STEPS].reverse()) {
      for (const undo of step.undo) {
        try {
          await undo(ctx);
        } catch (err) {
          failures.push(err);
        }
      }
    }
    if (failures.length) throw failures[0];
  }
}
