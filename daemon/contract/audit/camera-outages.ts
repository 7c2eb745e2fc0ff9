/**
 * Which camera state changes reach the audit log: one `camera_lost` / `camera_back` pair per
 * outage (however many reopen attempts it took), and per camera at most `burst` outages
 * audited, refilled one per `refillMs`, so a flapping source (a loose cable, a switch
 * restarting) cannot flood the log. An outage over the limit is counted, not lost: the next
 * audited `camera_lost` says how many were left out (`suppressed_outages`), and a camera that
 * goes down while over the limit and stays down is audited as soon as the limit allows.
 */
import type { AuditEventName } from './events.js';

export interface CameraOutageAuditOptions {
  emit: (
    event: Extract<AuditEventName, 'camera_lost' | 'camera_back'>,
    details: Record<string, unknown>,
  ) => void;
  /** Outages audited back to back before the limit applies. */
  burst?: number;
  /** One more outage may be audited per this long. */
  refillMs?: number;
  /** Monotonic clock, ms; injected in tests. */
  now?: () => number;
  /** Timers, injected in tests. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

interface CameraTrack {
  tokens: number;
  refilledAt: number;
  /** The current outage's camera_lost was audited (its camera_back will be). */
  audited: boolean;
  /** The current outage was over the limit: its camera_lost waits for a token. */
  pending: { state: string; error: string | null } | null;
  suppressed: number;
  timer: unknown;
}

const isLost = (state: string) => state === 'down' || state === 'failed' || state === 'ended';

export class CameraOutageAudit {
  private readonly cams = new Map<string, CameraTrack>();
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: CameraOutageAuditOptions) {
    this.burst = opts.burst ?? 5;
    this.refillMs = opts.refillMs ?? 60_000;
    this.now = opts.now ?? (() => performance.now());
    this.setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      });
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  /** A camera's state changed (any state; repeats are fine). */
  state(cameraId: string, state: string, error: string | null): void {
    const c = this.track(cameraId);
    if (isLost(state)) {
      if (c.audited || c.pending) return; // one camera_lost per outage
      if (this.take(c)) this.lost(cameraId, c, state, error);
      else {
        c.pending = { state, error };
        this.schedule(cameraId, c);
      }
    } else if (state === 'running') {
      if (c.audited) {
        c.audited = false;
        this.opts.emit('camera_back', { camera_id: cameraId, state, error: null });
      } else if (c.pending) {
        c.pending = null;
        c.suppressed++;
        this.unschedule(c);
      }
    }
  }

  /** Stops the timers; nothing more is emitted. */
  close(): void {
    for (const c of this.cams.values()) this.unschedule(c);
    this.cams.clear();
  }

  private lost(cameraId: string, c: CameraTrack, state: string, error: string | null): void {
    c.audited = true;
    const extra = c.suppressed ? { suppressed_outages: c.suppressed } : {};
    c.suppressed = 0;
    this.opts.emit('camera_lost', { camera_id: cameraId, state, error, ...extra });
  }

  private track(cameraId: string): CameraTrack {
    let c = this.cams.get(cameraId);
    if (!c) {
      c = {
        tokens: this.burst,
        refilledAt: this.now(),
        audited: false,
        pending: null,
        suppressed: 0,
        timer: null,
      };
      this.cams.set(cameraId, c);
    }
    return c;
  }

  private take(c: CameraTrack): boolean {
    const now = this.now();
    const earned = Math.floor((now - c.refilledAt) / this.refillMs);
    if (earned > 0) {
      c.tokens = Math.min(this.burst, c.tokens + earned);
      c.refilledAt = c.tokens === this.burst ? now : c.refilledAt + earned * this.refillMs;
    }
    if (c.tokens < 1) return false;
    c.tokens--;
    return true;
  }

  /** Audits a still-pending camera_lost as soon as a token is due. */
  private schedule(cameraId: string, c: CameraTrack): void {
    this.unschedule(c);
    const wait = Math.max(1, c.refilledAt + this.refillMs - this.now());
    c.timer = this.setTimer(() => {
      c.timer = null;
      const p = c.pending;
      if (!p) return;
      if (!this.take(c)) return this.schedule(cameraId, c);
      c.pending = null;
      this.lost(cameraId, c, p.state, p.error);
    }, wait);
  }

  private unschedule(c: CameraTrack): void {
    if (c.timer !== null) this.clearTimer(c.timer);
    c.timer = null;
  }
}
