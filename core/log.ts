/**
 * Structured logging. JSON lines (for journald and log shippers) or, in a terminal, readable
 * lines; always on stderr so `classify --json` keeps stdout for results. Secrets are redacted
 * by key name wherever they appear, and inside every line by redactSecrets (URL credentials,
 * pipeline passwords, auth headers).
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

const CENSOR = '[redacted]';

/** `scheme://user:password@host` (RTSP, MQTT, HTTP sources): the user info goes. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]*@/gi;
/** `name=value` secrets in GStreamer pipelines (`user-pw=...`) and URL queries (`?token=...`). */
const NAMED_SECRET =
  /\b(user-id|user-pw|user|username|password|passwd|pass|pwd|token|access_token|secret|api[_-]?key|key|auth)(\s*=\s*)("[^"]*"|'[^']*'|[^\s!&"',;]+)/gi;
/** HTTP headers handed to ffmpeg (`-headers "Authorization: Basic ..."`). */
const AUTH_HEADER = /\b(authorization|proxy-authorization|cookie)(\s*:\s*)([^\r\n"\\]+)/gi;

/**
 * The one redaction of secrets inside text: camera sources (URLs, pipelines, ffmpeg inputs),
 * broker URLs, error messages that quote them. Every output channel (logs, `info`,
 * `get_config`, the status API, audit, metrics) passes what it shows through this.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(URL_USERINFO, `$1${CENSOR}@`)
    .replace(NAMED_SECRET, `$1$2${CENSOR}`)
    .replace(AUTH_HEADER, `$1$2${CENSOR}`);
}

/** A deep copy with every string passed through redactSecrets (configs, payloads shown to others). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}

export function createLogger(opts: LogOptions, destination: NodeJS.WritableStream = process.stderr): Logger {
  const usePretty =
    opts.format === 'pretty' ||
    (opts.format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true);
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    // Every line passes redactSecrets on its way out, whatever field or message holds the secret.
    hooks: { streamWrite: redactSecrets },
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
