/**
 * Prometheus metrics for `/metrics` (prom-client, on a registry of our own so two daemons in
 * one process, as in tests, never share series). Events (stage times, decisions) are
 * observed as they happen; totals the daemon already counts (frames, MQTT) are read at
 * scrape time, so scraping costs the pipeline nothing between scrapes.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DecisionPayload, InfoPayload, MqttCounters } from '../contract/payloads.js';

export const METRIC_PREFIX = 'fghv_';

/** Per-camera totals since start, as the daemon counts them. */
export interface CameraTotals {
  camera: string;
  /** Frames read from the source. */
  captured: number;
  /** Frames that went through the whole pipeline. */
  processed: number;
  /** Frames replaced by a newer one before the pipeline took them (newest frame wins). */
  dropped: number;
  /** Frames taken but too old to decide on (decision.max_frame_age_ms). */
  stale: number;
  /** Of the processed frames, those the scene gate let pass without the face detector (absent: 0). */
  gated?: number;
  /** Frames the camera delivered that could not be decoded (a corrupt JPEG image; absent: 0). */
  bad?: number;
}

export interface MetricsSource {
  readonly info: InfoPayload;
  cameraTotals(): CameraTotals[];
  cameraStates(): { id: string; state: string; down_s?: number | null }[];
  mqttCounters(): MqttCounters | null;
  /** Audit records not yet delivered; null while there is no audit store. */
  auditBacklog(): number | null;
  preview(): { clients: number; sent: number; skippedSlow: number };
}

/** Seconds; stages range from sub-millisecond (decide) to hundreds of ms (CPU inference). */
export const STAGE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type Labels = Record<string, string>;

/**
 * A counter fed from a total someone else keeps: each scrape adds what the total grew by.
 * A total that went down (its source restarted) counts from zero again.
 */
function counterFromTotals(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => { labels: Labels; value: number }[],
): Counter {
  const last = new Map<string, number>();
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const { labels, value } of read()) {
        const key = JSON.stringify(labels);
        const prev = last.get(key) ?? 0;
        const delta = value >= prev ? value - prev : value;
        // inc(0) too: the series exists (at 0) from the first scrape, so rate() has a start.
        this.inc(labels, Math.max(0, delta));
        last.set(key, value);
      }
    },
  });
}

/** A gauge set at scrape time; a null value leaves no labelled sample (prom-client shows 0 for an unlabelled one). */
function gaugeFrom(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => { labels: Labels; value: number | null }[],
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of read()) if (value !== null) this.set(labels, value);
    },
  });
}

export class StatusMetrics {
  readonly registry = new Registry();
  private readonly stageSeconds: Histogram;
  private readonly decisions: Counter;

  constructor(source: MetricsSource, opts: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    const p = METRIC_PREFIX;
    // Not prom-client's collectDefaultMetrics: its continuous GC and event-loop observers cost
    // about 3 ms of CPU per frame here (bench/status.md: 59 -> 52.5 fps with the page closed).
    // These are read only when scraped, so an unscraped /metrics costs nothing.
    if (opts.processMetrics !== false) {
      gaugeFrom(r, 'process_resident_memory_bytes', 'Resident memory size in bytes.', [], () => [
        { labels: {}, value: process.memoryUsage.rss() },
      ]);
      gaugeFrom(
        r,
        'process_cpu_seconds_total',
        'User and system CPU time of the process, seconds.',
        [],
        () => {
          const u = process.cpuUsage();
          return [{ labels: {}, value: (u.user + u.system) / 1e6 }];
        },
      );
      gaugeFrom(r, 'nodejs_heap_size_used_bytes', 'V8 heap in use, bytes.', [], () => [
        { labels: {}, value: process.memoryUsage().heapUsed },
      ]);
      gaugeFrom(
        r,
        'process_start_time_seconds',
        'Start time of the process since the epoch, seconds.',
        [],
        () => [{ labels: {}, value: Math.round(Date.now() / 1000 - process.uptime()) }],
      );
    }
    this.stageSeconds = new Histogram({
      name: `${p}stage_duration_seconds`,
      help: 'Time spent in each pipeline stage per frame (capture: waiting for a frame).',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS_S,
      registers: [r],
    });
    this.decisions = new Counter({
      name: `${p}decisions_total`,
      help: 'Decisions published, by outcome, reason and failed quality gate ("" when none).',
      labelNames: ['camera', 'decision', 'reason', 'quality_gate'],
      registers: [r],
    });
    const perCamera = (key: keyof Omit<CameraTotals, 'camera'>) => () =>
      source.cameraTotals().map((t) => ({ labels: { camera: t.camera }, value: t[key] ?? 0 }));
    counterFromTotals(
      r,
      `${p}frames_captured_total`,
      'Frames read from the camera.',
      ['camera'],
      perCamera('captured'),
    );
    counterFromTotals(
      r,
      `${p}frames_processed_total`,
      'Frames that went through the whole pipeline.',
      ['camera'],
      perCamera('processed'),
    );
    counterFromTotals(
      r,
      `${p}frames_dropped_total`,
      'Frames replaced by a newer one while the pipeline was busy.',
      ['camera'],
      perCamera('dropped'),
    );
    counterFromTotals(
      r,
      `${p}frames_stale_total`,
      'Frames too old to decide on when their turn came.',
      ['camera'],
      perCamera('stale'),
    );
    counterFromTotals(
      r,
      `${p}frames_gated_total`,
      'Processed frames the scene gate let pass without running the face detector (nobody in view, nothing changed).',
      ['camera'],
      perCamera('gated'),
    );
    counterFromTotals(
      r,
      `${p}frames_bad_total`,
      'Frames the camera delivered that could not be decoded (a corrupt MJPEG image), skipped.',
      ['camera'],
      perCamera('bad'),
    );
    gaugeFrom(
      r,
      `${p}camera_up`,
      '1 while the camera pipeline runs, 0 otherwise (starting, ended, failed, stopped).',
      ['camera'],
      () =>
        source
          .cameraStates()
          .map((c) => ({ labels: { camera: c.id }, value: c.state === 'running' ? 1 : 0 })),
    );
    gaugeFrom(
      r,
      `${p}camera_down_seconds`,
      'How long the camera has not delivered (0 while it does).',
      ['camera'],
      () => source.cameraStates().map((c) => ({ labels: { camera: c.id }, value: c.down_s ?? 0 })),
    );
    const mqtt = () => source.mqttCounters();
    gaugeFrom(r, `${p}mqtt_connected`, '1 while connected to the MQTT broker.', [], () => [
      { labels: {}, value: mqtt() ? (mqtt()?.connected ? 1 : 0) : null },
    ]);
    gaugeFrom(r, `${p}mqtt_queued_messages`, 'QoS 1 messages waiting for the broker connection.', [], () => [
      { labels: {}, value: mqtt()?.queued ?? null },
    ]);
    counterFromTotals(r, `${p}mqtt_published_total`, 'Messages the broker accepted.', [], () => [
      { labels: {}, value: mqtt()?.published ?? 0 },
    ]);
    counterFromTotals(r, `${p}mqtt_dropped_total`, 'Messages that will never reach the broker.', [], () => [
      { labels: {}, value: mqtt()?.dropped ?? 0 },
    ]);
    gaugeFrom(
      r,
      `${p}audit_backlog_records`,
      'Audit records not yet delivered (0 while there is no audit store).',
      [],
      () => [{ labels: {}, value: source.auditBacklog() }],
    );
    gaugeFrom(
      r,
      `${p}model_info`,
      'The liveness model and detector in use (value 1).',
      ['model', 'version', 'sha256', 'family', 'purpose', 'provider', 'detector'],
      () => {
        const i = source.info;
        if (!i.model) return [];
        const { name, version, sha256, family, purpose } = i.model;
        const provider = i.execution_provider ?? '';
        return [
          {
            labels: {
              model: name,
              version,
              sha256,
              family,
              purpose,
              provider,
              detector: i.detector?.name ?? '',
            },
            value: 1,
          },
        ];
      },
    );
    gaugeFrom(r, `${p}status_preview_clients`, 'Status page preview streams open right now.', [], () => [
      { labels: {}, value: source.preview().clients },
    ]);
    counterFromTotals(
      r,
      `${p}status_preview_frames_total`,
      'Preview frames sent, or skipped for a slow client.',
      ['outcome'],
      () => {
        const pv = source.preview();
        return [
          { labels: { outcome: 'sent' }, value: pv.sent },
          { labels: { outcome: 'skipped_slow' }, value: pv.skippedSlow },
        ];
      },
    );
  }

  observeStage(stage: string, ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.stageSeconds.observe({ stage }, ms / 1000);
  }

  observeDecision(d: Pick<DecisionPayload, 'camera_id' | 'decision' | 'reason' | 'quality_gate'>): void {
    this.decisions.inc({
      camera: d.camera_id,
      decision: d.decision,
      reason: d.reason,
      quality_gate: d.quality_gate ?? '',
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
