/** Shared helpers for the camera tests: temp videos, tool checks, draining a driver. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cv } from '../../core/cv.js';
import { openCvHasGStreamer } from '../../drivers/camera/opencv-capture.js';
import type { CameraDriver, CaptureStats, Frame } from '../../drivers/camera/types.js';
import { sleep } from './wait.js';

export const DEMO_VIDEO = 'media/demo-kiosk.mp4';
/** Frames in media/demo-kiosk.mp4 (24 s at 15 fps, see media/README.md). */
export const DEMO_FRAMES = 360;

/** Write a short MPEG-4 clip whose frame i is a flat grey of level 10 * i (so frames are tellable apart). */
export function writeClip(file: string, frames: number, fps: number, width = 160, height = 120): void {
  const writer = new cv.VideoWriter(
    file,
    cv.VideoWriter.fourcc('mp4v'),
    fps,
    new cv.Size(width, height),
    true,
  );
  for (let i = 0; i < frames; i++) {
    const level = (10 * i) % 256;
    // setTo, not the fill constructor: that one loops per pixel in JS (about 1 us a pixel).
    writer.write(new cv.Mat(height, width, cv.CV_8UC3).setTo(new cv.Vec3(level, level, level)));
  }
  writer.release();
}

function toolWorks(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** For node:test's `skip`: false when GStreamer capture can run, else why not. */
export function needsGStreamer(): false | string {
  if (!toolWorks('gst-launch-1.0', ['--version'])) return 'gst-launch-1.0 is not installed';
  if (!openCvHasGStreamer()) return 'this OpenCV build has no GStreamer support';
  return false;
}

export function needsFfmpeg(): false | string {
  return toolWorks('ffmpeg', ['-version']) ? false : 'ffmpeg is not installed';
}

export function runFfmpeg(args: string[]): void {
  const res = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${res.stderr}`);
}

/** What the tests check about a frame, kept after its pixels are freed. */
export interface FrameFacts {
  seq: number;
  width: number;
  height: number;
  matWidth: number;
  matHeight: number;
  type: number;
  capturedAt: number;
  capturedMono: number;
  /** Mean of the blue channel; equal to green and red for grey sources. */
  meanBgr: [number, number, number];
  /** stats().captured - delivered - dropped: frames held in the slot (0 or 1). */
  held: number;
}

/** Take up to `max` frames (all when undefined), optionally consuming slowly; frees each Mat. */
export async function drain(camera: CameraDriver, max?: number, consumerDelayMs = 0): Promise<FrameFacts[]> {
  const out: FrameFacts[] = [];
  if (max === 0) return out;
  for await (const frame of camera.frames()) {
    const s = camera.stats();
    // The binding's Mat#mean() puts channel 0 in w, then 1, 2, 3 in x, y, z.
    const m = frame.mat.mean();
    out.push({
      seq: frame.seq,
      width: frame.width,
      height: frame.height,
      matWidth: frame.mat.cols,
      matHeight: frame.mat.rows,
      type: frame.mat.type,
      capturedAt: frame.capturedAt,
      capturedMono: frame.capturedMono,
      meanBgr: [m.w, m.x, m.y],
      held: s.captured - s.delivered - s.dropped,
    });
    frame.mat.release();
    if (consumerDelayMs) await sleep(consumerDelayMs);
    if (max !== undefined && out.length >= max) break;
  }
  return out;
}

/**
 * Newest-frame-wins accounting: the seq numbers skipped before the last delivered frame were
 * all dropped, and any other drop is a frame captured after it.
 */
export function assertDropsAccounted(frames: FrameFacts[], stats: CaptureStats): void {
  const last = frames.at(-1);
  if (!last) return;
  const skipped = last.seq - frames.length;
  assert.ok(
    stats.dropped >= skipped,
    `${skipped} seq numbers skipped but only ${stats.dropped} drops counted`,
  );
  assert.ok(stats.dropped <= skipped + (stats.captured - last.seq), 'no drop without a newer frame');
  assert.ok(stats.captured - stats.delivered - stats.dropped <= 1, 'at most one frame was left in the slot');
}

/** Opens, then never delivers a frame until closed (a stalled RTSP stream, a hung USB camera). */
export class StalledCamera implements CameraDriver {
  readonly info = {
    id: 'stalled',
    kind: 'fake' as const,
    source: 'stalled',
    width: null,
    height: null,
    fps: null,
  };
  private release: (() => void) | null = null;
  closed = false;
  async open(): Promise<void> {}
  async *frames(): AsyncGenerator<Frame> {
    await new Promise<void>((resolve) => {
      this.release = resolve;
    });
  }
  stats(): CaptureStats {
    return { captured: 0, delivered: 0, dropped: 0 };
  }
  async close(): Promise<void> {
    this.closed = true;
    this.release?.();
  }
}
