/**
 * Low-rate fallback for machines where only Debian's `fswebcam` can talk to the camera: one
 * fswebcam process per snapshot, JPEG on stdout, decoded here. A process start and a JPEG
 * round trip per frame limit it to a few frames per second: use it only when V4L2, GStreamer
 * and ffmpeg all fail. (The `node-webcam` kind, node-webcam.ts, wraps the same per-frame spawn
 * and works on other platforms too; this one avoids its temporary file per frame.)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cv, type Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { PumpedCamera } from './frame-pump.js';

export interface FswebcamOptions {
  id: string;
  /** The V4L2 device, e.g. /dev/video0. */
  device: string;
  width?: number | null;
  height?: number | null;
  /** Snapshots per second (default 2). */
  fps?: number | null;
  /** The program to run (tests substitute a stand-in). */
  command?: string;
  /** One snapshot may take this long before it counts as a failure. */
  snapshotTimeoutMs?: number;
}

export function fswebcamArgs(o: Pick<FswebcamOptions, 'device' | 'width' | 'height'>): string[] {
  const size = o.width && o.height ? ['-r', `${o.width}x${o.height}`] : [];
  return ['-q', '--no-banner', '-d', o.device, ...size, '--jpeg', '90', '-'];
}

/** A snapshot tool's JPEG as a BGR Mat; what is not an image fails with `fail(message)`. */
export async function decodeSnapshot(jpeg: Buffer, fail: (message: string) => KioskError): Promise<Mat> {
  let mat: Mat | undefined;
  try {
    mat = await cv.imdecodeAsync(jpeg, cv.IMREAD_COLOR);
  } catch (e) {
    throw fail(`snapshot is not an image: ${asError(e).message}`);
  }
  if (!mat || mat.empty) throw fail(`snapshot is not an image (${jpeg.length} bytes)`);
  return mat;
}

export class FswebcamSnapshot extends PumpedCamera {
  constructor(private readonly opts: FswebcamOptions) {
    super({ id: opts.id, kind: 'fswebcam', source: opts.device, width: null, height: null, fps: null });
  }

  async open(): Promise<void> {
    if (this.pump) return;
    if (!existsSync(this.opts.device))
      throw new KioskError(ErrorCodes.CAMERA_NOT_FOUND, `V4L2 device not found: ${this.opts.device}`, {
        details: { source: this.opts.device },
      });
    await this.startSnapshots(() => this.snapshot(), this.opts.fps);
  }

  async close(): Promise<void> {
    await this.pump?.stop(this.opts.snapshotTimeoutMs ?? 5000);
    this.pump = null;
  }

  private async snapshot(): Promise<Mat> {
    return decodeSnapshot(await this.runOnce(), (m) => this.failed(m));
  }

  private runOnce(): Promise<Buffer> {
    const command = this.opts.command ?? 'fswebcam';
    return new Promise((resolve, reject) => {
      const child = spawn(command, fswebcamArgs(this.opts), { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.snapshotTimeoutMs ?? 5000);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => {
        err = (err + c.toString()).slice(-600);
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === 'ENOENT'
            ? new KioskError(
                ErrorCodes.CAMERA_UNSUPPORTED,
                `${command} is not installed (Debian package fswebcam)`,
              )
            : this.failed(e.message),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0 && out.length) resolve(Buffer.concat(out));
        else
          reject(
            this.failed(
              `${command} ${signal ? `killed (${signal})` : `exit code ${code}`}: ${err.trim() || 'no output'}`,
            ),
          );
      });
    });
  }

  private failed(message: string): KioskError {
    return new KioskError(ErrorCodes.CAMERA_READ_FAILED, `camera ${this.opts.id} (fswebcam): ${message}`, {
      details: { source: this.opts.device },
    });
  }
}
