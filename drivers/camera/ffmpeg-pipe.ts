/**
 * Debian's ffmpeg as a capture backend: ffmpeg decodes any input it knows (V4L2, RTSP, HTTP,
 * files, lavfi test sources) and writes raw BGR frames to a pipe, which this driver slices into
 * exact frame-sized buffers. Killing the process is a clean way to abandon a stalled network
 * read, which a blocked OpenCV read in the libuv thread pool is not.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { FramePump, PumpedCamera } from './frame-pump.js';
import { JpegImage, JpegStreamSplitter } from './jpeg.js';
import type { CaptureStats } from './types.js';

export interface FfmpegPipeOptions {
  id: string;
  kind?: 'ffmpeg' | 'rtsp';
  /** A URL or path (becomes `-i SOURCE`), or ffmpeg input options ending in `-i INPUT`. */
  source: string;
  /** Scale the output to this size / resample to this rate (null: as the input delivers). */
  width?: number | null;
  height?: number | null;
  fps?: number | null;
  /** How long open() waits for the first frame. */
  openTimeoutMs?: number;
  ffmpegPath?: string;
  /**
   * 'auto': when the source's video is Motion JPEG (most USB cameras, `-input_format mjpeg`),
   * ffmpeg copies the camera's JPEG images unchanged and the pipeline decodes them at the
   * scale each stage needs (jpeg.ts; 'reduced' is the same here, see CameraPipeline); any other codec, or an output size or rate to convert
   * to, is decoded by ffmpeg as before. 'full' (default here): always decoded by ffmpeg.
   */
  decode?: 'auto' | 'reduced' | 'full';
  /**
   * Hand over every frame, pausing ffmpeg while one waits (a file played as fast as the
   * pipeline takes it: benchmarks). Default false: newest frame wins, as a live camera needs.
   */
  lossless?: boolean;
}

const STDERR_KEEP = 4096;
/** Bytes buffered before the output size is known; more means ffmpeg's header never came. */
const MAX_PRELUDE_BYTES = 64 * 2 ** 20;

/** Split ffmpeg input options like a shell would for simple cases: spaces, and '...' or "..." quotes. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

/** Whether ffmpeg may copy the camera's JPEG images: decode 'auto' and nothing to convert. */
export function wantsJpegCopy(opts: Pick<FfmpegPipeOptions, 'decode' | 'width' | 'height' | 'fps'>): boolean {
  return (opts.decode === 'auto' || opts.decode === 'reduced') && !(opts.width && opts.height) && !opts.fps;
}

/** The full ffmpeg command line (without the program) for a source and output options. */
export function ffmpegArgs(
  opts: Pick<FfmpegPipeOptions, 'source' | 'width' | 'height' | 'fps' | 'kind'>,
  output: 'bgr' | 'jpeg' = 'bgr',
): string[] {
  const src = opts.source.trim();
  let input: string[];
  if (src.startsWith('-')) input = splitArgs(src);
  else if (/^rtsps?:\/\//.test(src)) input = ['-rtsp_transport', 'tcp', '-i', src];
  else input = ['-i', src];
  // The camera's JPEG images, unchanged (the stream's codec is checked once ffmpeg names it).
  if (output === 'jpeg') return [...head(input), '-c:v', 'copy', '-f', 'mjpeg', 'pipe:1'];
  const out: string[] = [];
  if (opts.width && opts.height) out.push('-vf', `scale=${opts.width}:${opts.height}`);
  if (opts.fps) out.push('-r', String(opts.fps));
  return [...head(input), ...out, '-f', 'rawvideo', '-pix_fmt', 'bgr24', 'pipe:1'];
}

function head(input: string[]): string[] {
  return ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info', ...input, '-an', '-sn'];
}

/**
 * The copied stream's codec, size and rate from ffmpeg's stderr header (output: 'jpeg'), or
 * null while it has not been printed.
 */
export function parseCopyHeader(
  stderr: string,
): { codec: string; width: number; height: number; fps: number | null } | null {
  const at = stderr.indexOf('Output #0');
  if (at < 0) return null;
  const m = /Stream #\d+:\d+[^\n]*?: Video: (\w+)[^\n]*?, (\d+)x(\d+)[^\n]*\n/.exec(stderr.slice(at));
  if (!m) return null;
  const fps = /, (\d+(?:\.\d+)?) fps/.exec(m[0]);
  return {
    codec: m[1] as string,
    width: Number(m[2]),
    height: Number(m[3]),
    fps: fps ? Number(fps[1]) : null,
  };
}

/** The output frame size and rate from ffmpeg's stderr header, or null while it has not been printed. */
export function parseOutputHeader(
  stderr: string,
): { width: number; height: number; fps: number | null } | null {
  const at = stderr.indexOf('Output #0');
  if (at < 0) return null;
  const m = /Stream #\d+:\d+[^\n]*?: Video: rawvideo[^\n]*?, (\d+)x(\d+)[^\n]*\n/.exec(stderr.slice(at));
  if (!m) return null;
  const fps = /, (\d+(?:\.\d+)?) fps/.exec(m[0]);
  return { width: Number(m[1]), height: Number(m[2]), fps: fps ? Number(fps[1]) : null };
}

export class FfmpegPipeCapture extends PumpedCamera {
  private child: ChildProcess | null = null;
  private stderr = '';
  /** What ffmpeg writes: raw BGR frames, or the camera's JPEG images copied unchanged. */
  private output: 'bgr' | 'jpeg' = 'bgr';
  private header: { width: number; height: number; fps: number | null } | null = null;
  /** output 'jpeg': ffmpeg named a codec other than Motion JPEG, so it is restarted decoding. */
  private notJpeg = false;
  private splitter = new JpegStreamSplitter();
  private prelude: Buffer[] = [];
  private preludeBytes = 0;
  private partial: Buffer | null = null;
  private filled = 0;
  /** Complete frames not yet taken: at most one (newest wins), or two when lossless. */
  private queue: Buffer[] = [];
  /** Complete frames replaced by a newer one before the pump took them. */
  private overwritten = 0;
  private waiter: (() => void) | null = null;
  private exit: { code: number | null; signal: string | null; error?: Error } | null = null;
  private closing = false;

  constructor(private readonly opts: FfmpegPipeOptions) {
    super({
      id: opts.id,
      kind: opts.kind ?? 'ffmpeg',
      source: opts.source,
      width: null,
      height: null,
      fps: null,
    });
  }

  /** 'jpeg' when the frames are the camera's JPEG images (decoded by the pipeline), else 'bgr'. */
  get delivers(): 'bgr' | 'jpeg' {
    return this.output;
  }

  async open(): Promise<void> {
    if (this.child) return;
    let ok = false;
    if (wantsJpegCopy(this.opts)) {
      ok = await this.start('jpeg');
      if (!ok && this.notJpeg && !this.closing) {
        await this.stopChild();
        this.reset();
        ok = await this.start('bgr');
      }
    } else ok = await this.start('bgr');
    if (!ok) {
      const err = this.openError();
      await this.close();
      throw err;
    }
    const h = this.header;
    this.currentInfo = {
      ...this.currentInfo,
      width: h?.width ?? null,
      height: h?.height ?? null,
      fps: h?.fps ?? null,
    };
    const mode = this.opts.lossless ? { push: false as const } : { push: true as const, intervalMs: null };
    this.pump = new FramePump(() => this.readImage(), mode, this.opts.source);
    this.pump.start();
  }

  private async start(output: 'bgr' | 'jpeg'): Promise<boolean> {
    this.output = output;
    const child = spawn(this.opts.ffmpegPath ?? 'ffmpeg', ffmpegArgs(this.opts, output), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stderr?.setEncoding('utf8');
    // A process given up on (not Motion JPEG, restarted) may still report: ignored.
    const mine = () => this.child === child;
    child.stderr?.on('data', (text: string) => mine() && this.onStderr(text));
    child.stdout?.on('data', (chunk: Buffer) => mine() && this.onStdout(chunk));
    child.on('error', (error) => mine() && this.onExit(null, null, error));
    child.on('close', (code, signal) => mine() && this.onExit(code, signal));
    return this.waitFirstFrame(this.opts.openTimeoutMs ?? 10_000);
  }

  private reset(): void {
    this.child = null;
    this.stderr = '';
    this.header = null;
    this.notJpeg = false;
    this.splitter = new JpegStreamSplitter();
    this.prelude = [];
    this.preludeBytes = 0;
    this.partial = null;
    this.filled = 0;
    this.queue = [];
    this.exit = null;
  }

  override stats(): CaptureStats {
    const s = super.stats();
    return {
      captured: s.captured + this.overwritten,
      delivered: s.delivered,
      dropped: s.dropped + this.overwritten,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wake();
    await this.pump?.stop();
    await this.stopChild();
    this.queue = [];
    this.partial = null;
    this.prelude = [];
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    if (child && !this.exit && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await new Promise<void>((resolve) => child.once('close', () => resolve()));
      clearTimeout(killer);
    }
  }

  private onStderr(text: string): void {
    this.stderr = (this.stderr + text).slice(this.header ? -STDERR_KEEP : -MAX_PRELUDE_BYTES);
    if (this.header || this.notJpeg) return;
    if (this.output === 'jpeg') {
      const copy = parseCopyHeader(this.stderr);
      if (!copy) return;
      if (copy.codec !== 'mjpeg') {
        // Not a Motion JPEG source: what ffmpeg copies is no JPEG. Restarted decoding (open()).
        this.notJpeg = true;
        this.child?.kill('SIGKILL');
        this.wake();
        return;
      }
      this.header = { width: copy.width, height: copy.height, fps: copy.fps };
    } else {
      this.header = parseOutputHeader(this.stderr);
      if (!this.header) return;
    }
    const queued = this.prelude;
    this.prelude = [];
    for (const chunk of queued) this.onStdout(chunk);
  }

  private onStdout(chunk: Buffer): void {
    if (!this.header) {
      if (this.notJpeg) return;
      this.prelude.push(chunk);
      this.preludeBytes += chunk.length;
      if (this.preludeBytes > MAX_PRELUDE_BYTES) this.child?.kill('SIGKILL');
      return;
    }
    if (this.output === 'jpeg') {
      for (const image of this.splitter.push(chunk)) this.deliver(image);
      return;
    }
    const size = this.header.width * this.header.height * 3;
    let at = 0;
    while (at < chunk.length) {
      this.partial ??= Buffer.allocUnsafe(size);
      const n = Math.min(size - this.filled, chunk.length - at);
      chunk.copy(this.partial, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled < size) break;
      this.deliver(this.partial);
      this.partial = null;
      this.filled = 0;
    }
  }

  private deliver(frame: Buffer): void {
    if (this.opts.lossless) {
      this.queue.push(frame);
      if (this.queue.length >= 2) this.child?.stdout?.pause();
    } else {
      if (this.queue.length > 0) this.overwritten++;
      this.queue = [frame];
    }
    this.wake();
  }

  private onExit(code: number | null, signal: string | null, error?: Error): void {
    this.exit ??= { code, signal, ...(error ? { error } : {}) };
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async waitFirstFrame(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.exit && !this.closing && !this.notJpeg && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.queue.length > 0;
  }

  /** Next complete frame; null when ffmpeg finished its input normally (a file, a counted test source). */
  private async readImage(): Promise<Mat | JpegImage | null> {
    for (;;) {
      const buf = this.queue.shift();
      if (buf && this.header) {
        if (this.opts.lossless && this.queue.length < 2) this.child?.stdout?.resume();
        if (this.output === 'bgr') return new cv.Mat(buf, this.header.height, this.header.width, cv.CV_8UC3);
        // The stream's size: an image whose header declares another (or does not parse) is not
        // decoded (KIOSK_E_CAMERA_READ_FAILED, jpeg.ts) and the pipeline skips it.
        return new JpegImage(buf, this.header.width, this.header.height);
      }
      if (this.closing) return null;
      if (this.exit) {
        if (this.exit.code === 0) return null;
        throw new KioskError(
          ErrorCodes.CAMERA_READ_FAILED,
          `ffmpeg stopped (${this.exitText()}): ${this.opts.source}: ${this.stderrTail()}`,
          { details: { source: this.opts.source, code: this.exit.code, signal: this.exit.signal } },
        );
      }
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  private openError(): KioskError {
    const details = { source: this.opts.source };
    const spawnErr = this.exit?.error as NodeJS.ErrnoException | undefined;
    if (spawnErr?.code === 'ENOENT')
      return new KioskError(
        ErrorCodes.CAMERA_UNSUPPORTED,
        'ffmpeg is not installed (Debian package ffmpeg)',
        {
          cause: spawnErr,
          details,
        },
      );
    const tail = this.stderrTail();
    const code = /No such file or directory/.test(tail)
      ? ErrorCodes.CAMERA_NOT_FOUND
      : ErrorCodes.CAMERA_OPEN_FAILED;
    const why = this.exit ? `ffmpeg stopped (${this.exitText()})` : 'no frame before the open timeout';
    return new KioskError(code, `camera ${this.opts.id} (ffmpeg): ${why}: ${tail}`, { details });
  }

  private exitText(): string {
    if (!this.exit) return 'running';
    return this.exit.signal ? `signal ${this.exit.signal}` : `exit code ${this.exit.code}`;
  }

  private stderrTail(): string {
    const lines = this.stderr.trim().split('\n').slice(-3);
    return lines.join(' | ').slice(-600) || 'no message';
  }
}
