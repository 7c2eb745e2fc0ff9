/**
 * The camera factory: one config entry in, one CameraDriver out. Unknown kinds fail with the
 * list of valid ones, so a typo in a hand-written config explains itself.
 */
import path from 'node:path';
import { CAMERA_KINDS, type CameraConfig } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { FakeCamera } from './fake.js';
import { FfmpegPipeCapture } from './ffmpeg-pipe.js';
import { FswebcamSnapshot } from './fswebcam.js';
import { NodeWebcamSnapshot } from './node-webcam.js';
import { OpenCvCapture } from './opencv-capture.js';
import { isIdentity, OrientedCamera } from './orient.js';
import { createSourceWatch, sourceTarget } from './source-watch.js';
import { StillImageSource } from './still-image.js';
import { type SourceEvent, SupervisedCamera } from './supervised.js';
import type { CameraDriver, CameraKind } from './types.js';

export { CAMERA_KINDS };

type ResilienceKeys =
  | 'stall_timeout_ms'
  | 'reconnect_min_ms'
  | 'reconnect_max_ms'
  | 'rotate'
  | 'flip'
  | 'decode';
/** A camera config entry; `kind` is a plain string so callers may pass anything and get a clear error. */
export type CameraSpec = Omit<CameraConfig, 'kind' | ResilienceKeys> & { kind: string } & Partial<
    Pick<CameraConfig, ResilienceKeys>
  >;

export function createCamera(cfg: CameraSpec, opts: { repoRoot: string }): CameraDriver {
  const orientation = { rotate: cfg.rotate ?? 0, flip: cfg.flip ?? 'none' };
  const driver = createDriver(cfg, opts);
  return isIdentity(orientation) ? driver : new OrientedCamera(driver, orientation);
}

function createDriver(cfg: CameraSpec, opts: { repoRoot: string }): CameraDriver {
  const kind = cfg.kind as CameraKind;
  switch (kind) {
    case 'file':
    case 'image': {
      const file = path.resolve(opts.repoRoot, cfg.source);
      if (kind === 'image') return new StillImageSource(file, cfg.id);
      return new OpenCvCapture({ id: cfg.id, kind, source: file, loop: cfg.loop, realtime: cfg.realtime });
    }
    case 'v4l2':
    case 'gstreamer':
      return new OpenCvCapture({
        id: cfg.id,
        kind,
        source: cfg.source,
        width: cfg.width,
        height: cfg.height,
        fps: cfg.fps,
      });
    case 'ffmpeg':
    case 'rtsp': {
      // rtsp:// shorthand: ffmpeg over TCP, because a stalled network read is abandoned by
      // killing a process, while a blocked OpenCV read would hold a libuv thread.
      const size = { width: cfg.width, height: cfg.height, fps: cfg.fps };
      return new FfmpegPipeCapture({
        id: cfg.id,
        kind,
        source: cfg.source,
        ...size,
        decode: cfg.decode ?? 'auto',
      });
    }
    case 'fswebcam':
      return new FswebcamSnapshot({
        id: cfg.id,
        device: /^\d+$/.test(cfg.source) ? `/dev/video${cfg.source}` : cfg.source,
        width: cfg.width,
        height: cfg.height,
        fps: cfg.fps,
      });
    case 'node-webcam':
      return new NodeWebcamSnapshot({
        id: cfg.id,
        device: /^\d+$/.test(cfg.source)
          ? `/dev/video${cfg.source}`
          : cfg.source === 'default'
            ? null
            : cfg.source,
        width: cfg.width,
        height: cfg.height,
        fps: cfg.fps,
      });
    case 'fake':
      return new FakeCamera({
        id: cfg.id,
        width: cfg.width ?? 640,
        height: cfg.height ?? 480,
        intervalMs: 1000 / (cfg.fps ?? 15),
      });
    default:
      throw new KioskError(
        ErrorCodes.CAMERA_UNSUPPORTED,
        `unknown camera kind "${cfg.kind}"; valid kinds: ${CAMERA_KINDS.join(', ')}`,
        { details: { id: cfg.id, kind: cfg.kind, valid: CAMERA_KINDS } },
      );
  }
}

/**
 * The camera the daemon runs: the configured driver inside a supervisor that reopens it when it
 * fails or stalls, watching its path or host (source-watch.ts) to reopen the moment it is back.
 * Files played once and still images are finite: their end is final.
 */
export function createSupervisedCamera(
  cfg: CameraConfig,
  opts: { repoRoot: string; onEvent?: (e: SourceEvent) => void | Promise<void> },
): SupervisedCamera {
  const target = sourceTarget(cfg.kind, cfg.source, opts.repoRoot);
  return new SupervisedCamera({
    id: cfg.id,
    create: () => createCamera(cfg, opts),
    stallTimeoutMs: cfg.stall_timeout_ms,
    minMs: cfg.reconnect_min_ms,
    maxMs: cfg.reconnect_max_ms,
    finite: (cfg.kind === 'file' && !cfg.loop) || (cfg.kind as string) === 'image',
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(target ? { watch: createSourceWatch(target) } : {}),
  });
}

export { FakeCamera, type FakeCameraOptions } from './fake.js';
export { FfmpegPipeCapture } from './ffmpeg-pipe.js';
export { FswebcamSnapshot } from './fswebcam.js';
export { jetsonCsiPipeline, rtspPipeline, usbCameraPipeline } from './gst-pipelines.js';
export { LatestFrameSlot } from './latest-frame.js';
export { NodeWebcamSnapshot } from './node-webcam.js';
export { OpenCvCapture, openCvHasGStreamer } from './opencv-capture.js';
export { type Flip, type Orientation, OrientedCamera, orientMat, type Rotation } from './orient.js';
export {
  createSourceWatch,
  type SourceTarget,
  type SourceWatch,
  sourceTarget,
} from './source-watch.js';
export { readImageBgr, StillImageSource } from './still-image.js';
export {
  type CameraRecovery,
  type LossReason,
  reconnectDelayMs,
  type SourceEvent,
  SupervisedCamera,
} from './supervised.js';
export type { CameraDriver, CameraInfo, CameraKind, CaptureStats, Frame } from './types.js';
