/**
 * The one way out of the daemon: the pipeline hands its decisions and guidance, the health
 * reporter its reports, and the controller its `info` changes to this object, which turns them
 * into contract payloads and gives them to the MQTT link. A decision flows pipeline ->
 * ContractSink.decision -> DecisionChannel (number, sign, durable audit row) -> ContractLink,
 * and only then do observers (the daemon's `decision` event: tests, status page, verify) hear
 * of it. Extends ContractServices (key, audit store and outbox, commands, Home Assistant).
 */
import { EventEmitter } from 'node:events';
import { configHash } from '../../config/config-hash.js';
import type { Config } from '../../config/schema.js';
import { type Logger, redactSecrets } from '../../core/log.js';
import type { GuidanceState, GuidedPresence } from '../decision/guidance.js';
import type { SessionDecision } from '../decision/types.js';
import type { FaceDetector } from '../detect/types.js';
import type { LivenessModel } from '../liveness/liveness-model.js';
import type { CommandTarget } from './commands/command-server.js';
import type { ContractLink } from './contract-link.js';
import { ContractServices, contractCapabilities } from './contract-services.js';
import {
  type DecisionPayload,
  type GuidancePayload,
  type HealthPayload,
  type InfoPayload,
  type MqttCounters,
  monoToIso,
  type SeqSource,
} from './payloads.js';
import { CONTRACT_VERSION } from './topics.js';

/** What a camera pipeline hands on (daemon/pipeline/pipeline.ts); the drill and tests pass their own. */
export interface PipelineSink {
  /** A fused decision; the pipeline waits for it (the publish stage of its latencies). */
  decision(d: SessionDecision): unknown;
  /** The guidance state changed, or the person held (rate-limited by the pipeline). */
  guidance?(cameraId: string, state: GuidanceState, faces: number, presence: GuidedPresence): void;
}

/** The models in use now (the liveness model may be replaced while running: model_update). */
export interface SinkModels {
  liveness: LivenessModel | null;
  detector: FaceDetector | null;
}

export interface ContractSinkOptions {
  config: Config;
  deviceId: string;
  /** The software version `info` names. */
  version: string;
  log: Logger;
  models: () => SinkModels;
}

/** `info` from what is known (every part may still be missing: before start, or a failed one). */
export function contractInfo(
  config: Config,
  version: string,
  parts: { deviceId: string; models: SinkModels; publicKey: string | null; broker: string | null },
): InfoPayload {
  const { liveness, detector } = parts.models;
  const m = liveness?.info;
  const overrides = liveness ? liveness.thresholds.overrides() : {};
  return {
    v: CONTRACT_VERSION,
    device_id: parts.deviceId,
    software: { name: 'fghv-kiosk', version },
    model: m
      ? { name: m.name, version: m.version, sha256: m.sha256, family: m.family, purpose: m.purpose }
      : null,
    detector: detector ? { name: detector.name, model: config.detector.model } : null,
    execution_provider: liveness?.provider ?? null,
    cameras: config.cameras.map((c) => ({ id: c.id, kind: c.kind, source: redactSecrets(c.source) })),
    decision_public_key: parts.publicKey,
    capabilities: contractCapabilities(config.commands),
    config_hash: configHash(config, overrides),
    threshold_overrides: Object.keys(overrides).length ? overrides : null,
    broker: parts.broker,
    // What the overrides are measured against (a fleet console flags loosened ones).
    model_thresholds: liveness ? { ...liveness.thresholds.floor } : null,
  };
}

export interface ContractSinkEvents {
  /** A decision after it was made durable and handed to the link. */
  decision: [payload: DecisionPayload];
}

export class ContractSink extends ContractServices implements PipelineSink {
  private link: ContractLink | null = null;
  /** Observers of published decisions (the daemon re-emits them); never on the publish path. */
  readonly events = new EventEmitter<ContractSinkEvents>();

  constructor(private readonly sink: ContractSinkOptions) {
    super(sink.config, sink.deviceId, sink.log);
  }

  /**
   * Attaches the link (call before `link.start()`, so the first connect already replays what a
   * previous run left and carries `info`); `info` is kept current on every connect.
   */
  connect(link: ContractLink, seq: SeqSource, target: CommandTarget): void {
    this.link = link;
    this.attach(link, seq, target, () => this.info());
    link.setInfo(this.info());
    // info names the broker in use: updated on each connect, before it is republished there.
    link.on('broker', () => link.setInfo(this.info()));
  }

  /** The retained `info` as of now. */
  info(): InfoPayload {
    return contractInfo(this.sink.config, this.sink.version, {
      deviceId: this.sink.deviceId,
      models: this.sink.models(),
      publicKey: this.signer.publicKey,
      broker: this.link?.broker ?? null,
    });
  }

  /** The model, thresholds or broker changed: republish `info`. */
  infoChanged(): void {
    this.link?.setInfo(this.info());
  }

  /** build -> sign -> durable audit row -> publish (decision topic and audit), then observers. */
  decision(d: SessionDecision): DecisionPayload | null {
    const { liveness } = this.sink.models();
    if (!this.link || !liveness) return null;
    const payload = this.decide(d, { model: liveness.info, execution_provider: liveness.provider });
    this.sink.log.info(
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
    this.events.emit('decision', payload);
    return payload;
  }

  /** Retained `<camera>/guidance`, QoS 0; the presence instants as wall-clock time. */
  guidance(cameraId: string, state: GuidanceState, faces: number, presence: GuidedPresence): void {
    const wall = Date.now();
    const mono = performance.now();
    const iso = (at: number | undefined) => (at === undefined ? undefined : monoToIso(at, mono, wall));
    const payload: GuidancePayload = {
      v: CONTRACT_VERSION,
      ts: new Date(wall).toISOString(),
      device_id: this.sink.deviceId,
      camera_id: cameraId,
      state,
      faces,
      ...(presence.presenceSinceMono === undefined
        ? {}
        : { presence_since: iso(presence.presenceSinceMono) }),
      ...(presence.heldSinceMono === undefined ? {} : { held_since: iso(presence.heldSinceMono) }),
    };
    if (this.link)
      void this.link.publish({
        topic: this.link.topics.guidance(cameraId),
        payload: JSON.stringify(payload),
        qos: 0,
        retain: true,
      });
  }

  /** The health reporter's sink (daemon/telemetry/health.ts). */
  publishHealth(payload: HealthPayload): unknown {
    return this.link?.publishHealth(payload);
  }

  counters(): MqttCounters {
    if (!this.link) throw new Error('ContractSink.counters before connect');
    return this.link.counters();
  }
}
