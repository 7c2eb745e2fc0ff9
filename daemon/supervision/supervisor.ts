/**
 * What the service manager hears from the daemon: STATUS while models load (a TensorRT engine
 * build can take minutes), READY=1 once `Daemon.start()` resolved (models loaded and warmed
 * up), WATCHDOG=1 every WATCHDOG_USEC/2 only while every camera pipeline makes progress (a
 * stalled pipeline stops the pings and systemd restarts the service), STOPPING=1 on shutdown.
 */
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../core/log.js';
import { SdNotifier, watchdogIntervalMs } from './sd-notify.js';

export interface Supervised {
  isAlive(stallMs: number): boolean;
}

export class Supervisor {
  private timer: NodeJS.Timeout | null = null;
  private ready = false;
  private stalled = false;

  constructor(
    private readonly daemon: Supervised,
    private readonly config: Pick<Config, 'supervision'> & {
      liveness: Pick<Config['liveness'], 'providers'>;
    },
    private readonly log: Logger,
    private readonly notifier = new SdNotifier(),
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const interval = watchdogIntervalMs(env);
    if (!this.notifier.enabled) return;
    const trt = config.liveness.providers.includes('tensorrt');
    this.notifier.send({
      STATUS: trt
        ? 'starting: loading models (a first TensorRT engine build can take minutes)'
        : 'starting: loading and warming up models',
      MAINPID: process.pid,
    });
    if (interval !== null) {
      this.timer = setInterval(() => this.tick(), interval);
      this.timer.unref();
      log.info({ intervalMs: interval }, `systemd watchdog: pinging every ${interval} ms`);
    }
  }

  /** Start-up is guarded by TimeoutStartSec; after READY only a pipeline making progress pings. */
  private tick(): void {
    const alive = !this.ready || this.daemon.isAlive(this.config.supervision.stall_ms);
    if (alive) {
      if (this.stalled) {
        this.stalled = false;
        this.log.info('camera pipelines make progress again: watchdog pings resume');
        this.notifier.send({ STATUS: 'running' });
      }
      this.notifier.send({ WATCHDOG: 1 });
    } else if (!this.stalled) {
      this.stalled = true;
      this.log.error(
        { stallMs: this.config.supervision.stall_ms },
        'a camera pipeline finished no frame within supervision.stall_ms: watchdog pings stop',
      );
      this.notifier.send({ STATUS: 'stalled: a camera pipeline makes no progress' });
    }
  }

  markReady(status: string): void {
    this.ready = true;
    this.notifier.send({ READY: 1, STATUS: status });
  }

  markStopping(why: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.notifier.send({ STOPPING: 1, STATUS: `stopping (${why})` });
  }

  markFailed(message: string): void {
    this.notifier.send({ STATUS: `failed: ${message}` });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.notifier.close();
  }
}
