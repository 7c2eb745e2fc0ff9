/**
 * Structured logging. JSON lines (for journald and log shippers) or, in a terminal, readable
 * lines; always on stderr so `classify --json` keeps stdout for results. Secrets are redacted
 * by key name wherever they appear.
 */
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
}

export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'passphrase',
  '*.passphrase',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'secret',
  '*.secret',
  'token',
  '*.token',
];

export function createLogger(opts: LogOptions, destination: NodeJS.WritableStream = process.stderr): Logger {
  const usePretty =
    opts.format === 'pretty' ||
    (opts.format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true);
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (usePretty) {
    return pino(
      base,
      pretty({
        destination,
        sync: true,
        colorize: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino(base, pino.destination({ dest: (destination as { fd?: number }).fd ?? 2, sync: true }));
}

/** A logger that drops everything (tests, `--quiet`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
