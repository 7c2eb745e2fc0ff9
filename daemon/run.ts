/**
 * `fghv-kiosk run`: start the daemon, handle signals (here and only here), stop within a
 * deadline. A second signal, or the deadline, forces the exit. An uncaught error takes the
 * same shutdown path.
 */
import type { Config } from '../config/schema.js';
import { KioskError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { RESTART_EXIT_CODE } from './contract/commands/daemon-target.js';
import { Daemon } from './daemon.js';
import { Supervisor } from './supervision/supervisor.js';

export interface RunOptions {
  config: Config;
  configFile: string | null;
  envKeys: string[];
  log: Logger;
  version: string;
}

export async function runDaemon(opts: RunOptions): Promise<number> {
  const { log } = opts;
  log.info(
    { version: opts.version, config: opts.configFile ?? 'embedded defaults', env: opts.envKeys },
    `fghv-kiosk ${opts.version} starting (config: ${opts.configFile ?? 'embedded defaults'})`,
  );
  const daemon = new Daemon({ config: opts.config, log, version: opts.version, configFile: opts.configFile });
  const supervisor = new Supervisor(daemon, opts.config, log);
  const STOP_DEADLINE_MS = opts.config.supervision.stop_deadline_ms;
  let stopping: Promise<number> | null = null;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => {
    resolveExit = r;
  });

  const shutdown = (why: string, code: number): Promise<number> => {
    if (stopping !== null) {
      log.warn({ why }, 'second stop request: exiting now');
      process.exit(code || 1);
    }
    log.info({ why }, `stopping (${why})`);
    supervisor.markStopping(why);
    // Kept referenced: a stop that hangs can never keep the process alive past the deadline.
    const deadline = setTimeout(() => {
      log.error({ deadlineMs: STOP_DEADLINE_MS }, 'shutdown deadline passed: forcing exit');
      process.exit(code || 1);
    }, STOP_DEADLINE_MS);
    stopping = daemon
      .stop()
      .then(() => code)
      .catch((e) => {
        log.error({ err: e }, 'error during shutdown');
        return code || 1;
      })
      .finally(() => {
        clearTimeout(deadline);
        supervisor.close();
      });
    void stopping.then((exitCode) => {
      resolveExit(exitCode);
      // Whatever a failed stop left open (a socket, a worker) must not keep the process alive.
      setTimeout(() => {
        log.warn('handles still open after stop: exiting');
        process.exit(exitCode);
      }, 2000).unref();
    });
    return stopping;
  };

  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  // `restart` / `reload_config` commands: a graceful stop, then the supervisor starts us again.
  daemon.on('restart', () => void shutdown('restart command', RESTART_EXIT_CODE));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, `uncaught error: ${err.message}`);
    void shutdown('uncaught error', 1);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection');
    void shutdown('unhandled rejection', 1);
  });

  try {
    await daemon.start();
  } catch (e) {
    // A stop that arrived during start (SIGTERM during model warm-up): start gave up at its
    // next step and stop undid what was built; exit as that stop decides, not as a failure.
    if (stopping !== null) {
      log.info({ reason: (e as Error).message }, 'start cancelled by the stop request');
      return exited;
    }
    const err = e as Error;
    const code = e instanceof KioskError ? e.code : 'KIOSK_E_INTERNAL';
    log.fatal({ err, code }, `cannot start: ${code}: ${err.message}`);
    supervisor.markFailed(`${code}: ${err.message}`);
    supervisor.close();
    return 1;
  }
  log.info({ device: daemon.deviceId }, 'ready');
  supervisor.markReady(`running: ${daemon.figures().model} on ${daemon.figures().provider}`);
  return exited;
}
