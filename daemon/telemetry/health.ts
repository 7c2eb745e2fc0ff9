/**
 * The `health` message: a component that owns one timer, started in `start()` and cleared in
 * `stop()`. System figures come from systeminformation; what the platform does not tell
 * (CPU temperature and GPU on VMs) is null. Pipeline figures come from a callback the
 * controller passes in, so this file knows nothing about cameras or models.
 */
import si from 'systeminformation';
import type { CameraRecovery } from '../../drivers/camera/supervised.js';
import type {
  CameraHealth,
  CameraRecoveryFigures,
  HealthPayload,
  LatencyFigures,
  ModelRef,
  MqttCounters,
  SystemFigures,
} from '../contract/payloads.js';
import { CONTRACT_VERSION } from '../contract/topics.js';

export interface PipelineFigures {
  fps: { capture: number; processed: number; dropped: number };
  latency_ms: Record<string, LatencyFigures>;
  cameras: CameraHealth[];
  model: ModelRef | null;
  execution_provider: string | null;
}

export interface HealthSink {
  publishHealth(payload: HealthPayload): unknown;
  counters(): MqttCounters;
}

export interface HealthReporterOptions {
  deviceId: string;
  intervalS: number;
  sink: HealthSink;
  pipeline: () => PipelineFigures;
  /** Injected in tests; defaults to systeminformation. */
  system?: () => Promise<SystemFigures>;
  /** Wall clock, ms since the epoch. */
  now?: () => number;
  /** Durable audit outbox figures (null when there is none). */
  outbox?: () => HealthPayload['outbox'];
  /** Called with an error from one tick; the timer keeps running. */
  onError?: (err: unknown) => void;
}

const round1 = (v: number | null | undefined): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 10) / 10 : null;

/** A supervised camera's recovery state as health and the status page show it (nulls while up). */
export function cameraRecoveryFigures(r: CameraRecovery | null): CameraRecoveryFigures {
  if (!r) return { down_s: null, next_attempt_in_s: null, waiting_for: null };
  return {
    down_s: round1(r.downMs / 1000),
    next_attempt_in_s: r.nextAttemptInMs === null ? null : round1(r.nextAttemptInMs / 1000),
    waiting_for: r.waitingFor,
  };
}

/** CPU, memory, temperature and NVIDIA GPU figures; every one null where the platform is silent. */
export async function readSystemFigures(): Promise<SystemFigures> {
  const [load, mem, temp, graphics] = await Promise.all([
    si.currentLoad().catch(() => null),
    si.mem().catch(() => null),
    si.cpuTemperature().catch(() => null),
    si.graphics().catch(() => null),
  ]);
  const gpus = (graphics?.controllers ?? []).filter((c) => c.utilizationGpu !== undefined);
  return {
    cpu_load_pct: round1(load?.currentLoad),
    mem_used_pct: mem && mem.total > 0 ? round1((mem.active / mem.total) * 100) : null,
    process_rss_mb: round1(process.memoryUsage.rss() / 2 ** 20),
    cpu_temp_c: round1(temp?.main),
    gpu: gpus.length
      ? gpus.map((c) => ({
          name: c.model,
          util_pct: round1(c.utilizationGpu),
          mem_used_mb: round1(c.memoryUsed),
          temp_c: round1(c.temperatureGpu),
        }))
      : null,
  };
}

export class HealthReporter {
  private timer: NodeJS.Timeout | null = null;
  private tick: Promise<void> | null = null;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly system: () => Promise<SystemFigures>;

  constructor(private readonly opts: HealthReporterOptions) {
    this.now = opts.now ?? Date.now;
    this.system = opts.system ?? readSystemFigures;
    this.startedAt = this.now();
  }

  /** Primes the CPU load measure (its first call takes ~0.5 s and reports since boot), then ticks. */
  async start(): Promise<void> {
    if (this.timer) return;
    if (!this.opts.system) await si.currentLoad().catch(() => null);
    this.timer = setInterval(() => {
      if (this.tick !== null) return; // a slow tick is skipped, never stacked
      this.tick = this.publishOnce()
        .then(
          () => undefined,
          (err) => this.opts.onError?.(err),
        )
        .finally(() => {
          this.tick = null;
        });
    }, this.opts.intervalS * 1000);
  }

  /** Clears the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.tick;
  }

  async snapshot(): Promise<HealthPayload> {
    const nowMs = this.now();
    const pipeline = this.opts.pipeline();
    return {
      v: CONTRACT_VERSION,
      ts: new Date(nowMs).toISOString(),
      device_id: this.opts.deviceId,
      uptime_s: Math.round((nowMs - this.startedAt) / 1000),
      fps: pipeline.fps,
      latency_ms: pipeline.latency_ms,
      system: await this.system(),
      mqtt: this.opts.sink.counters(),
      outbox: this.opts.outbox?.() ?? null,
      cameras: pipeline.cameras,
      model: pipeline.model,
      execution_provider: pipeline.execution_provider,
    };
  }

  async publishOnce(): Promise<HealthPayload> {
    const payload = await this.snapshot();
    await this.opts.sink.publishHealth(payload);
    return payload;
  }
}
