/**
 * A camera that survives a real kiosk: wraps a driver factory and presents one endless frame
 * stream. A source that fails, ends (live kinds) or delivers nothing for `stallTimeoutMs` is
 * closed and reopened; a camera missing at start is retried the same way instead of failing the
 * daemon. With a `watch` (source-watch.ts) a source that is away is watched for (inotify on its
 * path, a TCP probe for network sources) and reopened the moment it is back, however long it
 * was gone; the exponential backoff with jitter is kept for opens that fail while the watch says
 * the source is there (a device that exists but cannot stream), and for sources with no watch.
 * Lost and restored are reported through `onEvent` (awaited, so the consumer can end open
 * sessions before frames flow again), once per outage however many attempts it took.
 */
import { performance } from 'node:perf_hooks';
import { abortableSleep } from '../../core/async.js';
import { asError, ErrorCodes, isKioskError, KioskError } from '../../core/errors.js';
import { releaseFrame } from './jpeg.js';
import type { SourceWatch } from './source-watch.js';
import type { CameraDriver, CameraInfo, CaptureStats, Frame } from './types.js';

export type LossReason = 'open_failed' | 'failed' | 'stalled' | 'ended';

export type SourceEvent =
  | { type: 'lost'; cameraId: string; reason: LossReason; error: Error; attempt: number }
  | { type: 'restored'; cameraId: string; downMs: number; attempts: number; openToFrameMs: number }
  /** A permanent error (e.g. the backend is not installed): no more attempts. */
  | { type: 'failed'; cameraId: string; error: Error };

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

/**
 * Delay before reconnection attempt `attempt` (1-based): min * 2^(attempt-1), capped at max,
 * then spread by +-25% jitter so cameras behind one restarted switch do not retry in lockstep.
 * `random` is in [0, 1).
 */
export function reconnectDelayMs(attempt: number, o: BackoffOptions, random: number): number {
  const base = Math.min(o.maxMs, o.minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  const jittered = base * (0.75 + 0.5 * random);
  return Math.round(Math.max(Math.min(o.minMs, o.maxMs), Math.min(o.maxMs, jittered)));
}

export interface SupervisedCameraOptions extends BackoffOptions {
  id: string;
  create: () => CameraDriver;
  stallTimeoutMs: number;
  /** The source's end is its normal finish (a file played once), not a loss. */
  finite: boolean;
  onEvent?: (event: SourceEvent) => void | Promise<void>;
  random?: () => number;
  /** Notices the source coming back; without one, reopening follows the backoff alone. */
  watch?: SourceWatch;
}

/** Where a camera that is down stands, for health and the status page. */
export interface CameraRecovery {
  /** Since the loss was noticed. */
  downMs: number;
  /** Open attempts and stream failures since the loss. */
  attempts: number;
  /**
   * 'source': the source is away and watched; the next attempt is the moment it is back.
   * 'backoff': the source is there but failed to open or stream; next attempt after a delay.
   * 'opening': an attempt (or a probe) is in progress now.
   */
  waitingFor: 'source' | 'backoff' | 'opening';
  /** Until the next attempt: 0 while opening, null while waiting for the source. */
  nextAttemptInMs: number | null;
}

const STALL = Symbol('stall');

export class SupervisedCamera implements CameraDriver {
  private inner: CameraDriver | null = null;
  private lastInfo: CameraInfo;
  private readonly past: CaptureStats = { captured: 0, delivered: 0, dropped: 0 };
  private readonly retired = new WeakSet<CameraDriver>();
  private opened = false;
  private closing = false;
  private sourceEnded = false;
  private permanent: Error | null = null;
  private cancelWait: (() => void) | null = null;
  /** Failures since the watch last saw the source away (or since the last restore). */
  private failuresWhilePresent = 0;
  private waiting: { for: CameraRecovery['waitingFor']; untilMono: number | null } = {
    for: 'opening',
    untilMono: null,
  };
  private connecting: Promise<unknown> | null = null;
  /** Set while down: when the loss began and how many attempts since. */
  private down: { sinceMono: number; attempts: number } | null = null;
  private openedAtMono = 0;
  /** Reconnections that delivered a frame, for status and tests. */
  restores = 0;

  constructor(private readonly opts: SupervisedCameraOptions) {
    const probe = opts.create(); // fails now on a config error (unknown kind), not in a retry loop
    this.lastInfo = probe.info;
  }

  get info(): CameraInfo {
    return this.inner?.info ?? this.lastInfo;
  }

  /** True while a source is open and delivering (false while reconnecting). */
  get connected(): boolean {
    return this.inner !== null && this.down === null;
  }

  get ended(): boolean {
    return this.sourceEnded;
  }

  /** Try once; a source missing at start is reported lost and retried by frames(), never thrown. */
  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    await this.connect();
  }

  frames(): AsyncIterable<Frame> {
    if (!this.opened)
      throw new KioskError(ErrorCodes.INTERNAL, `camera ${this.opts.id}: frames() before open()`);
    return this.stream();
  }

  private async *stream(): AsyncGenerator<Frame> {
    while (!this.closing && !this.sourceEnded && !this.permanent) {
      if (!this.inner) {
        await this.waitToReopen();
        if (this.closing) return;
        await this.connect();
        continue;
      }
      const inner = this.inner;
      const it = inner.frames()[Symbol.asyncIterator]();
      let loss: { reason: LossReason; error: Error } | null = null;
      try {
        for (;;) {
          const r = await this.nextWithin(it);
          if (r === STALL) {
            const msg = `no frame for ${this.opts.stallTimeoutMs} ms`;
            loss = { reason: 'stalled', error: new KioskError(ErrorCodes.CAMERA_STALLED, msg) };
            break;
          }
          if (r.done) {
            if (this.closing) return;
            if (this.opts.finite) {
              this.sourceEnded = true;
              return;
            }
            loss = {
              reason: 'ended',
              error: new KioskError(ErrorCodes.CAMERA_ENDED, 'the live source ended'),
            };
            break;
          }
          if (this.down) await this.restored();
          yield r.value;
        }
      } catch (e) {
        if (this.closing) return;
        loss = { reason: 'failed', error: asError(e) };
      }
      await this.retire(inner);
      if (loss && !this.closing) await this.lost(loss.reason, loss.error);
    }
    if (this.permanent) throw this.permanent;
  }

  /** Null while delivering; while down, how long and what the next attempt waits for. */
  recovery(): CameraRecovery | null {
    const down = this.down;
    if (!down) return null;
    const now = performance.now();
    const w = this.waiting;
    return {
      downMs: Math.round(now - down.sinceMono),
      attempts: down.attempts,
      waitingFor: w.for,
      nextAttemptInMs:
        w.for === 'source' ? null : w.untilMono === null ? 0 : Math.max(0, Math.round(w.untilMono - now)),
    };
  }

  stats(): CaptureStats {
    const s = this.inner?.stats() ?? { captured: 0, delivered: 0, dropped: 0 };
    return {
      captured: this.past.captured + s.captured,
      delivered: this.past.delivered + s.delivered,
      dropped: this.past.dropped + s.dropped,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    this.cancelWait?.();
    await this.connecting;
    if (this.inner) await this.retire(this.inner);
  }

  private async connect(): Promise<void> {
    const camera = this.opts.create();
    const attempt = camera.open();
    this.connecting = attempt.catch(() => undefined);
    try {
      await this.withinTimeout(attempt, Math.max(2 * this.opts.stallTimeoutMs, 10_000));
    } catch (e) {
      await camera.close().catch(() => undefined);
      if (this.closing) return;
      const err = asError(e);
      if (isKioskError(err, ErrorCodes.CAMERA_UNSUPPORTED)) {
        this.permanent = err;
        await this.opts.onEvent?.({ type: 'failed', cameraId: this.opts.id, error: err });
        return;
      }
      await this.lost('open_failed', err);
      return;
    } finally {
      this.connecting = null;
    }
    if (this.closing) {
      await camera.close().catch(() => undefined);
      return;
    }
    this.inner = camera;
    this.lastInfo = camera.info;
    this.openedAtMono = performance.now();
  }

  private async lost(reason: LossReason, error: Error): Promise<void> {
    const first = this.down === null;
    if (first) this.down = { sinceMono: performance.now(), attempts: 0 };
    const down = this.down as { sinceMono: number; attempts: number };
    down.attempts++;
    this.failuresWhilePresent++;
    // Report the loss once, not every failed attempt; attempts are in the restored event.
    if (first) await this.opts.onEvent?.({ type: 'lost', cameraId: this.opts.id, reason, error, attempt: 1 });
  }

  private async restored(): Promise<void> {
    const down = this.down;
    if (!down) return;
    this.down = null;
    this.failuresWhilePresent = 0;
    this.restores++;
    const now = performance.now();
    await this.opts.onEvent?.({
      type: 'restored',
      cameraId: this.opts.id,
      downMs: Math.round(now - down.sinceMono),
      attempts: down.attempts,
      openToFrameMs: Math.round(now - this.openedAtMono),
    });
  }

  private async retire(camera: CameraDriver): Promise<void> {
    if (this.inner === camera) this.inner = null;
    if (this.retired.has(camera)) return;
    this.retired.add(camera);
    await camera.close().catch(() => undefined);
    const s = camera.stats();
    this.past.captured += s.captured;
    this.past.delivered += s.delivered;
    this.past.dropped += s.dropped;
  }

  /** The next frame, or STALL when none comes in time (the late one, if any, is freed). */
  private async nextWithin(it: AsyncIterator<Frame>): Promise<IteratorResult<Frame> | typeof STALL> {
    const next = it.next();
    let timer: NodeJS.Timeout | undefined;
    const stall = new Promise<typeof STALL>((resolve) => {
      timer = setTimeout(() => resolve(STALL), this.opts.stallTimeoutMs);
    });
    const r = await Promise.race([next, stall]).finally(() => clearTimeout(timer));
    if (r === STALL)
      next.then(
        (late) => {
          if (!late.done) releaseFrame(late.value);
        },
        () => undefined,
      );
    return r;
  }

  private withinTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new KioskError(ErrorCodes.CAMERA_OPEN_FAILED, `camera ${this.opts.id}: open took over ${ms} ms`),
          ),
        ms,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Before the next open: with a watch, a source that is away is waited for (no timer: the
   * attempt comes when it is back); a source that is there but keeps failing, and any source
   * without a watch, waits an exponential backoff. close() cuts either wait short.
   */
  private async waitToReopen(): Promise<void> {
    const ac = new AbortController();
    this.cancelWait = () => ac.abort();
    try {
      const watch = this.opts.watch;
      if (watch) {
        this.waiting = { for: 'opening', untilMono: null };
        if (!(await watch.present(ac.signal))) {
          if (ac.signal.aborted) return;
          this.failuresWhilePresent = 0;
          this.waiting = { for: 'source', untilMono: null };
          await watch.untilPresent(ac.signal);
          return;
        }
      }
      const attempt = Math.max(1, this.failuresWhilePresent);
      const ms = reconnectDelayMs(attempt, this.opts, (this.opts.random ?? Math.random)());
      this.waiting = { for: 'backoff', untilMono: performance.now() + ms };
      await abortableSleep(ms, ac.signal);
    } finally {
      this.cancelWait = null;
      this.waiting = { for: 'opening', untilMono: null };
    }
  }
}
