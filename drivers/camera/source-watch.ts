/**
 * Noticing that a lost camera source is back, instead of waiting out a backoff timer. Where it
 * is cheap and exact: a device node or video file is watched with inotify (fs.watch on the
 * nearest existing parent directory, so a missing /dev/v4l/by-id or a not-yet-mounted folder
 * works too); a network source (rtsp, http, tcp, ...) is probed with a TCP connect at a short
 * fixed interval. The supervisor opens at once when the watch says the source is there and
 * keeps its exponential backoff for opens that fail while it is (a device that exists but
 * cannot stream). Sources with nothing cheap to watch (a GStreamer pipeline naming neither a
 * file, a device nor a host, a fake camera) get no watch: backoff as before.
 */
import { existsSync, type FSWatcher, watch } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { abortableSleep } from '../../core/async.js';
import type { CameraKind } from './types.js';

export type SourceTarget = { type: 'path'; path: string } | { type: 'tcp'; host: string; port: number };

const DEFAULT_PORTS: Record<string, number> = {
  'rtsp:': 554,
  'rtsps:': 322,
  'rtspt:': 554,
  'http:': 80,
  'https:': 443,
  'rtmp:': 1935,
  'rtmps:': 443,
  'tcp:': 0,
};

/** host:port of a URL whose scheme runs over TCP; null for anything else (udp, file, ...). */
export function tcpTarget(url: string): SourceTarget | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const fallback = DEFAULT_PORTS[u.protocol];
  if (fallback === undefined || !u.hostname) return null;
  const port = u.port ? Number(u.port) : fallback;
  if (!port) return null;
  return { type: 'tcp', host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

const URL_RE = /\b(?:rtsps?|rtspt|https?|rtmps?|tcp):\/\/[^\s"'!]+/i;

/** The target named by a GStreamer pipeline's source element (location=, uri=, device=), if any. */
function gstreamerTarget(pipeline: string): SourceTarget | null {
  const prop = (name: string) => new RegExp(`\\b${name}=("([^"]*)"|'([^']*)'|([^\\s!]+))`).exec(pipeline);
  const m = prop('location') ?? prop('uri') ?? prop('device');
  const value = m ? (m[2] ?? m[3] ?? m[4] ?? '') : '';
  if (!value) return null;
  if (value.startsWith('file://')) return { type: 'path', path: decodeURIComponent(value.slice(7)) };
  if (value.startsWith('/')) return { type: 'path', path: value };
  return tcpTarget(value);
}

/** What to watch for a configured source; null when nothing cheap and exact exists. */
export function sourceTarget(
  kind: CameraKind | string,
  source: string,
  repoRoot: string,
): SourceTarget | null {
  switch (kind) {
    case 'file':
    case 'image':
      return { type: 'path', path: path.resolve(repoRoot, source) };
    case 'v4l2':
    case 'fswebcam':
    case 'node-webcam': {
      const device = /^\d+$/.test(source) ? `/dev/video${source}` : source;
      // Only an absolute path is watched: anything else the driver resolves its own way.
      return path.isAbsolute(device) ? { type: 'path', path: device } : null;
    }
    case 'ffmpeg':
    case 'rtsp': {
      const url = URL_RE.exec(source)?.[0];
      if (url) return tcpTarget(url);
      // A plain file or device given to ffmpeg (`-i /dev/video0`, `-f v4l2 -i /dev/video0`).
      const file = /(?:^|\s)-i\s+(\/\S+)/.exec(source)?.[1] ?? (source.startsWith('/') ? source : null);
      return file ? { type: 'path', path: file } : null;
    }
    case 'gstreamer':
      return gstreamerTarget(source);
    default:
      return null;
  }
}

export interface SourceWatch {
  /** What is watched, for logs. */
  readonly description: string;
  /** One cheap check: is the source there now? */
  present(signal?: AbortSignal): Promise<boolean>;
  /**
   * Resolves true as soon as the source is there (at once if it already is), false when
   * `signal` aborts. Holds no watcher, socket or timer once it has settled.
   */
  untilPresent(signal: AbortSignal): Promise<boolean>;
}

export interface WatchOptions {
  /** TCP probe interval while a network source is away. */
  probeIntervalMs?: number;
  /** A TCP connect that has not succeeded in this long counts as "not there". */
  probeTimeoutMs?: number;
  /** Safety poll for paths, in case an inotify event is missed (network file systems). */
  pathPollMs?: number;
}

export function createSourceWatch(target: SourceTarget, o: WatchOptions = {}): SourceWatch {
  return target.type === 'path'
    ? new PathWatch(target.path, o.pathPollMs ?? 1000)
    : new TcpWatch(target.host, target.port, o.probeIntervalMs ?? 250, o.probeTimeoutMs ?? 1000);
}

/** The nearest directory above `p` that exists ("/" at worst). */
function nearestExistingDir(p: string): string {
  let dir = path.dirname(p);
  while (!existsSync(dir)) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

class PathWatch implements SourceWatch {
  readonly description: string;
  constructor(
    private readonly file: string,
    private readonly pollMs: number,
  ) {
    this.description = `path ${file}`;
  }

  async present(): Promise<boolean> {
    return existsSync(this.file);
  }

  untilPresent(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(false);
      let watcher: FSWatcher | null = null;
      let watchedDir: string | null = null;
      let settled = false;
      const finish = (v: boolean) => {
        if (settled) return;
        settled = true;
        watcher?.close();
        clearInterval(poll);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = () => finish(false);
      const rewatch = (dir: string | null) => {
        watcher?.close();
        watcher = null;
        watchedDir = dir;
        if (!dir) return;
        try {
          watcher = watch(dir, check);
          // The directory itself removed or unreadable: watch again from the nearest parent.
          watcher.on('error', () => rewatch(null));
        } catch {
          watcher = null; // the safety poll still runs
        }
      };
      const check = () => {
        if (settled) return;
        if (existsSync(this.file)) return finish(true);
        const dir = nearestExistingDir(this.file);
        if (dir !== watchedDir || !watcher) rewatch(dir);
      };
      const poll = setInterval(check, this.pollMs);
      signal.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }
}

class TcpWatch implements SourceWatch {
  readonly description: string;
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {
    this.description = `tcp ${host}:${port}`;
  }

  present(signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const socket = net.connect({ host: this.host, port: this.port });
      const finish = (v: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.destroy();
        resolve(v);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), this.timeoutMs);
      socket.once('connect', () => finish(true));
      socket.once('error', () => finish(false));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async untilPresent(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const t0 = performance.now();
      if (await this.present(signal)) return true;
      const rest = this.intervalMs - (performance.now() - t0);
      if (rest > 0 && !(await abortableSleep(rest, signal))) return false;
    }
    return false;
  }
}
