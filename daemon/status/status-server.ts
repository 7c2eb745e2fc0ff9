/**
 * The local status page and `/metrics` on node:http. Routes: `/` (the page), `/api/status`
 * (JSON), `/preview.mjpeg` (the live preview, see preview.ts) and `/metrics` (Prometheus).
 * Everything the server shows is read from the daemon when asked; the only per-frame work
 * is the preview hub's, and the server listens to frames only while a preview is open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { redactSecrets } from '../../core/log.js';
import type {
  CameraRecoveryFigures,
  DecisionPayload,
  InfoPayload,
  LatencyFigures,
  SystemFigures,
} from '../contract/payloads.js';
import type { DrillControl } from '../drill/daemon-drill.js';
import type { CameraState, FrameResult } from '../pipeline/pipeline.js';
import { readSystemFigures } from '../telemetry/health.js';
import { checkAccess, resolveStatusToken } from './auth.js';
import { type CameraTotals, type MetricsSource, StatusMetrics } from './metrics.js';
import { STATUS_PAGE_HTML } from './page.js';
import {
  MJPEG_CONTENT_TYPE,
  PREVIEW_FAIR_SHARE_MS,
  PREVIEW_STALL_TIMEOUT_MS,
  PreviewHub,
} from './preview.js';
import { type RateSample, ratesBetween, summariseDecision } from './status-json.js';

/** What the server reads from the daemon (the Daemon class satisfies the event and getter parts). */
export interface StatusDaemon {
  readonly info: InfoPayload;
  figures(): { stages: Record<string, LatencyFigures> };
  cameraStates(): ({
    id: string;
    state: CameraState;
    error: string | null;
    guidance?: string;
  } & Partial<CameraRecoveryFigures>)[];
  on(event: 'frame', fn: (r: FrameResult) => void): unknown;
  on(event: 'decision', fn: (d: DecisionPayload) => void): unknown;
  off(event: 'frame', fn: (r: FrameResult) => void): unknown;
  off(event: 'decision', fn: (d: DecisionPayload) => void): unknown;
}

export interface StatusServerOptions {
  config: Config['status'];
  daemon: StatusDaemon;
  cameraTotals: () => CameraTotals[];
  mqttCounters: MetricsSource['mqttCounters'];
  /** The audit store's undelivered records; null until there is one. */
  auditBacklog?: () => number | null;
  log: Logger;
  /** Injected in tests; defaults to systeminformation. */
  system?: () => Promise<SystemFigures>;
  /**
   * A port that cannot be bound: false (default) logs KIOSK_E_STATUS_LISTEN and the daemon
   * runs on without its page (decisions matter more than diagnostics); true rejects.
   */
  failOnListenError?: boolean;
  /** Site acceptance drill (start, label, stop) under /api/drill; absent: no drill routes. */
  drill?: DrillControl;
}

const LAST_DECISIONS = 20;
const SYSTEM_REFRESH_MS = 5000;
export const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
export const PAGE_CSP =
  "default-src 'none'; img-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

export class StatusServer {
  readonly metrics: StatusMetrics;
  private readonly hub: PreviewHub;
  private readonly server: Server;
  private readonly token: string | null;
  private readonly decisions: ReturnType<typeof summariseDecision>[] = [];
  private rateBase: RateSample | null = null;
  private rates: ReturnType<typeof ratesBetween> = {};
  private system: SystemFigures | null = null;
  private systemAt = Number.NEGATIVE_INFINITY;
  private systemRefresh: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private listeningOnFrames = false;
  private boundUrl = '';

  private readonly onFrame = (r: FrameResult) => this.hub.offer(r);
  private readonly onDecision = (d: DecisionPayload) => {
    this.metrics.observeDecision(d);
    this.decisions.unshift(summariseDecision(d));
    this.decisions.length = Math.min(this.decisions.length, LAST_DECISIONS);
  };

  private constructor(private readonly opts: StatusServerOptions) {
    this.token = resolveStatusToken(opts.config);
    this.hub = new PreviewHub({
      fps: opts.config.preview_fps,
      onError: (err) => opts.log.warn({ err }, 'preview frame failed'),
      onStalled: (_c, why) =>
        opts.log.warn(
          { viewers: this.hub.clientCount, why },
          why === 'stalled'
            ? `preview viewer disconnected: it read no frame for ${PREVIEW_STALL_TIMEOUT_MS / 1000} s (its slot is free again)`
            : `preview viewer disconnected after ${PREVIEW_FAIR_SHARE_MS / 1000} s to make room for a new one (every slot was taken)`,
        ),
    });
    this.metrics = new StatusMetrics({
      // `info` changes after start (the provider in use), so it is read at each scrape.
      get info() {
        return opts.daemon.info;
      },
      cameraTotals: opts.cameraTotals,
      cameraStates: () => opts.daemon.cameraStates(),
      mqttCounters: opts.mqttCounters,
      auditBacklog: opts.auditBacklog ?? (() => null),
      preview: () => ({
        clients: this.hub.clientCount,
        sent: this.hub.sent,
        skippedSlow: this.hub.skippedSlow,
      }),
    });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        opts.log.warn({ err }, 'status request failed');
        if (!res.headersSent) res.writeHead(500, COMMON_HEADERS);
        res.end();
      });
    });
  }

  /** Validates the auth rule (KIOSK_E_STATUS_AUTH_CONFIG), listens (KIOSK_E_STATUS_LISTEN), subscribes. */
  static async start(opts: StatusServerOptions): Promise<StatusServer> {
    const s = new StatusServer(opts);
    try {
      await s.listen();
    } catch (err) {
      if (opts.failOnListenError) throw err;
      opts.log.error(
        { err, code: ErrorCodes.STATUS_LISTEN },
        `${(err as Error).message}: running without the status page`,
      );
      return s;
    }
    opts.daemon.on('decision', s.onDecision);
    return s;
  }

  /** `http://host:port/` with the port actually bound (port 0 picks one); null when not listening. */
  get url(): string | null {
    return this.boundUrl || null;
  }

  private listen(): Promise<void> {
    const { host, port } = this.opts.config;
    return new Promise((resolve, reject) => {
      const onError = (cause: Error) =>
        reject(
          new KioskError(
            ErrorCodes.STATUS_LISTEN,
            `status page cannot listen on ${host}:${port}: ${cause.message}`,
            {
              cause,
              details: { host, port },
            },
          ),
        );
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const addr = this.server.address() as AddressInfo;
        const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.boundUrl = `http://${h}:${addr.port}/`;
        this.opts.log.info(
          { url: this.boundUrl, auth: this.token ? 'token' : 'loopback only' },
          `status page listening on ${this.boundUrl}`,
        );
        resolve();
      });
    });
  }

  private setFrameListener(): void {
    const want = this.hub.clientCount > 0;
    if (want === this.listeningOnFrames) return;
    if (want) this.opts.daemon.on('frame', this.onFrame);
    else this.opts.daemon.off('frame', this.onFrame);
    this.listeningOnFrames = want;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const access = checkAccess(this.token, req.headers);
    if (access === 'unauthorized') {
      res.writeHead(401, {
        ...COMMON_HEADERS,
        'www-authenticate': 'Basic realm="fghv-kiosk", charset="UTF-8"',
      });
      return void res.end('authentication required\n');
    }
    if (access === 'bad_host') {
      res.writeHead(421, COMMON_HEADERS);
      return void res.end('this page answers only to a loopback Host name\n');
    }
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    if (this.opts.drill && (path === '/api/drill' || path.startsWith('/api/drill/')))
      return drillRoute(this.opts.drill, req, res, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, allow: 'GET, HEAD' });
      return void res.end();
    }
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, {
        ...COMMON_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': PAGE_CSP,
      });
      return void res.end(req.method === 'HEAD' ? undefined : STATUS_PAGE_HTML);
    }
    if (path === '/api/status') {
      const body = JSON.stringify(this.snapshot());
      res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/json' });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (path === '/metrics') {
      const text = await this.metrics.render();
      res.writeHead(200, { ...COMMON_HEADERS, 'content-type': this.metrics.contentType });
      return void res.end(req.method === 'HEAD' ? undefined : text);
    }
    if (path === '/preview.mjpeg') return this.stream(req, res);
    res.writeHead(404, { ...COMMON_HEADERS, 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'HEAD' || !this.hub.add(res)) {
      res.writeHead(req.method === 'HEAD' ? 200 : 503, {
        ...COMMON_HEADERS,
        'content-type': MJPEG_CONTENT_TYPE,
      });
      return void res.end();
    }
    res.writeHead(200, { ...COMMON_HEADERS, 'content-type': MJPEG_CONTENT_TYPE, connection: 'close' });
    this.setFrameListener();
    this.opts.log.info(
      { viewers: this.hub.clientCount },
      'preview opened: camera frames are being sent to a viewer',
    );
    res.once('close', () => {
      this.hub.remove(res);
      this.setFrameListener();
      this.opts.log.info({ viewers: this.hub.clientCount }, 'preview closed');
    });
  }

  private refreshSystem(): void {
    const now = performance.now();
    if (this.systemRefresh || now - this.systemAt < SYSTEM_REFRESH_MS) return;
    this.systemAt = now;
    this.systemRefresh = (this.opts.system ?? readSystemFigures)()
      .then((s) => {
        this.system = s;
      })
      .catch(() => undefined)
      .finally(() => {
        this.systemRefresh = null;
      });
  }

  /** The JSON of /api/status. Frame rates are over the last 2-4 s of polling; null before that. */
  snapshot() {
    this.refreshSystem();
    const info = this.opts.daemon.info;
    const totals = this.opts.cameraTotals();
    const now = performance.now();
    if (!this.rateBase) this.rateBase = { at: now, totals };
    else if (now - this.rateBase.at >= 2000) {
      this.rates = ratesBetween(this.rateBase, { at: now, totals });
      this.rateBase = { at: now, totals };
    }
    const sum = (k: keyof Omit<CameraTotals, 'camera'>) => totals.reduce((a, t) => a + (t[k] ?? 0), 0);
    return {
      v: 1,
      ts: new Date().toISOString(),
      device_id: info.device_id,
      software: info.software,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      model: info.model,
      detector: info.detector,
      execution_provider: info.execution_provider,
      config_hash: info.config_hash,
      threshold_overrides: info.threshold_overrides ?? null,
      cameras: this.opts.daemon.cameraStates().map((c) => {
        const conf = info.cameras.find((x) => x.id === c.id);
        const t = totals.find((x) => x.camera === c.id);
        return {
          id: c.id,
          kind: conf?.kind ?? null,
          source: conf ? redactSecrets(conf.source) : null,
          state: c.state,
          error: c.error === null ? null : redactSecrets(c.error),
          // While down: how long, and whether the next attempt waits for the source or a backoff.
          down_s: c.down_s ?? null,
          next_attempt_in_s: c.next_attempt_in_s ?? null,
          waiting_for: c.waiting_for ?? null,
          guidance: c.guidance ?? null,
          totals: t ?? null,
          fps: this.rates[c.id] ?? null,
        };
      }),
      totals: {
        captured: sum('captured'),
        processed: sum('processed'),
        dropped: sum('dropped'),
        stale: sum('stale'),
      },
      latency_ms: this.opts.daemon.figures().stages,
      mqtt: this.opts.mqttCounters(),
      audit_backlog: (this.opts.auditBacklog ?? (() => null))(),
      system: this.system,
      decisions: this.decisions,
      preview: {
        clients: this.hub.clientCount,
        fps: this.opts.config.preview_fps,
        encoded: this.hub.encoded,
        sent: this.hub.sent,
        skipped_slow: this.hub.skippedSlow,
      },
    };
  }

  /** Stops listening to the daemon, ends preview streams, closes every connection. */
  async close(): Promise<void> {
    this.opts.drill?.abort();
    this.opts.daemon.off('decision', this.onDecision);
    this.opts.daemon.off('frame', this.onFrame);
    this.listeningOnFrames = false;
    await this.hub.close();
    if (this.server.listening) {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
    }
    await this.systemRefresh;
  }
}

const MAX_DRILL_BODY = 4096;

/**
 * GET /api/drill (status); POST /api/drill/start {camera?}, /api/drill/label {label, type?,
 * subject?}, /api/drill/stop. POSTs must be application/json: a page on another site cannot
 * send that without a CORS preflight, which this server never grants (no cross-site drill
 * control); the loopback/token rule above applies as to every route.
 */
async function drillRoute(
  drill: DrillControl,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (path === '/api/drill' && req.method === 'GET') return send(200, drill.status());
  const action = path.slice('/api/drill/'.length);
  if (req.method !== 'POST' || !['start', 'label', 'stop'].includes(action)) {
    res.writeHead(405, { ...COMMON_HEADERS, allow: path === '/api/drill' ? 'GET' : 'POST' });
    return void res.end();
  }
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    return send(415, {
      error: { code: ErrorCodes.USAGE, message: 'send JSON (content-type: application/json)' },
    });
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_DRILL_BODY)
      return send(413, { error: { code: ErrorCodes.USAGE, message: 'body too large' } });
  }
  try {
    const body = (text.trim() ? JSON.parse(text) : {}) as Record<string, unknown>;
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string).slice(0, 128) : undefined);
    if (action === 'start') return send(200, drill.start(str('camera')));
    if (action === 'stop') return send(200, await drill.stop());
    const label = str('label');
    if (label !== 'bona_fide' && label !== 'attack' && label !== 'none')
      return send(400, {
        error: { code: ErrorCodes.DRILL_INVALID, message: 'label must be bona_fide, attack or none' },
      });
    if (label === 'attack' && !str('type'))
      return send(400, {
        error: { code: ErrorCodes.DRILL_INVALID, message: 'an attack needs its type (print, replay, ...)' },
      });
    return send(200, await drill.label({ label, type: str('type'), subject: str('subject') }));
  } catch (e) {
    if (e instanceof KioskError) return send(409, { error: { code: e.code, message: e.message } });
    if (e instanceof SyntaxError)
      return send(400, { error: { code: ErrorCodes.USAGE, message: 'body is not JSON' } });
    throw e;
  }
}
