/**
 * Snapshot camera through the npm package node-webcam: it runs fswebcam on Linux, imagesnap on
 * macOS and CommandCam on Windows, one process per snapshot, so the rate is a few frames per
 * second. Prefer `v4l2` (or `gstreamer` / `ffmpeg`) on Linux: they stream at the camera's rate
 * and open the device once. Use this kind where only the platform's snapshot tool can reach
 * the camera, or on a non-Linux machine. (`fswebcam`, the Linux-only kind, runs fswebcam
 * directly with the JPEG on stdout and no temporary file.)
 *
 * node-webcam builds a shell command line from its options, so the device must be a plain path
 * or name (letters, digits, `/`, `.`, `_`, `-`); its in-memory capture returns stderr instead of
 * the image (0.8.2), so each snapshot goes through a file in a private temporary directory,
 * read and removed at once. Frames go through the same FramePump (newest frame wins, stamps,
 * stats) and, in the daemon, the same supervisor as every other kind.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Mat } from '../../core/cv.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { PumpedCamera } from './frame-pump.js';
import { decodeSnapshot } from './fswebcam.js';

interface NodeWebcamInstance {
  bin?: string;
  capture(location: string, cb: (err: Error | null, data: unknown) => void): void;
}
interface NodeWebcamModule {
  create(opts: Record<string, unknown>): NodeWebcamInstance;
}

export interface NodeWebcamOptions {
  id: string;
  /** The device as the platform tool names it (/dev/video0 on Linux); null: its default. */
  device: string | null;
  width?: number | null;
  height?: number | null;
  /** Snapshots per second (default 2). */
  fps?: number | null;
  /** The program node-webcam runs instead of its platform default (tests substitute a stand-in). */
  command?: string;
  /** One snapshot may take this long before it counts as a failure. */
  snapshotTimeoutMs?: number;
}

const SAFE = /^[A-Za-z0-9/._-]+$/;

export class NodeWebcamSnapshot extends PumpedCamera {
  private dir: string | null = null;
  private cam: NodeWebcamInstance | null = null;
  private shots = 0;

  constructor(private readonly opts: NodeWebcamOptions) {
    super({
      id: opts.id,
      kind: 'node-webcam',
      source: opts.device ?? 'default',
      width: null,
      height: null,
      fps: null,
    });
  }

  async open(): Promise<void> {
    if (this.pump) return;
    const { device, command } = this.opts;
    for (const [what, v] of [
      ['device', device],
      ['command', command],
    ] as const)
      if (v != null && !SAFE.test(v))
        throw new KioskError(
          ErrorCodes.CAMERA_UNSUPPORTED,
          `camera ${this.opts.id} (node-webcam): the ${what} "${v}" may hold only letters, digits, / . _ - (node-webcam runs a shell command line)`,
        );
    const require = createRequire(import.meta.url);
    const NodeWebcam = require('node-webcam') as NodeWebcamModule;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'fghv-webcam-'));
    this.cam = NodeWebcam.create({
      ...(this.opts.width && this.opts.height ? { width: this.opts.width, height: this.opts.height } : {}),
      quality: 90,
      frames: 1,
      output: 'jpeg',
      device: device ?? false,
      callbackReturn: 'buffer',
      saveShots: false,
      verbose: false,
    });
    if (command) this.cam.bin = command;
    try {
      await this.startSnapshots(() => this.snapshot(), this.opts.fps);
    } catch (e) {
      this.cleanup();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.pump?.stop(this.opts.snapshotTimeoutMs ?? 5000);
    this.pump = null;
    this.cleanup();
  }

  private cleanup(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.cam = null;
  }

  private async snapshot(): Promise<Mat> {
    return decodeSnapshot(await this.captureOnce(), (m) => this.failed(m));
  }

  private captureOnce(): Promise<Buffer> {
    const cam = this.cam;
    const dir = this.dir;
    if (!cam || !dir) return Promise.reject(this.failed('closed'));
    const file = path.join(dir, `shot-${++this.shots}.jpg`);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(this.failed(`no snapshot within ${this.opts.snapshotTimeoutMs ?? 5000} ms`)),
        this.opts.snapshotTimeoutMs ?? 5000,
      );
      cam.capture(file, (err) => {
        clearTimeout(timer);
        if (err) {
          const msg = asError(err).message;
          reject(
            /not found|ENOENT/.test(msg)
              ? new KioskError(
                  ErrorCodes.CAMERA_UNSUPPORTED,
                  `camera ${this.opts.id} (node-webcam): ${cam.bin ?? 'the platform snapshot tool'} is not installed (Linux: Debian package fswebcam): ${msg.trim().slice(0, 300)}`,
                )
              : this.failed(msg.trim().slice(0, 600)),
          );
          return;
        }
        try {
          resolve(readFileSync(file));
        } catch (e) {
          reject(this.failed(`no image written: ${asError(e).message}`));
        } finally {
          rmSync(file, { force: true });
        }
      });
    });
  }

  private failed(message: string): KioskError {
    return new KioskError(ErrorCodes.CAMERA_READ_FAILED, `camera ${this.opts.id} (node-webcam): ${message}`, {
      details: { source: this.info.source },
    });
  }
}
