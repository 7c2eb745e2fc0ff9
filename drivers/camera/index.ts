/**
 * The camera factory: one config entry in, one CameraDriver out. Unknown kinds fail with the
 * list of valid ones, so a typo in a hand-written config explains itself.
 */
import path from 'node:path';
import type { CameraConfig } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../daemon/errors.js';
import { FakeCamera } from './fake.js';
import { OpenCvCapture } from './opencv-capture.js';
import { StillImageSource } from './still-image.js';
import type { CameraDriver, CameraKind } from './types.js';

export const CAMERA_KINDS: readonly CameraKind[] = ['file', 'v4l2', 'gstreamer', 'image', 'fake'];

/** A camera config entry; `kind` is a plain string so callers may pass anything and get a clear error. */
export type CameraSpec = Omit<CameraConfig, 'kind'> & { kind: string };

export function createCamera(cfg: CameraSpec, opts: { repoRoot: string }): CameraDriver {
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

export { FakeCamera, type FakeCameraOptions } from './fake.js';
export { LatestFrameSlot } from './latest-frame.js';
export { OpenCvCapture, openCvHasGStreamer } from './opencv-capture.js';
export { readImageBgr, StillImageSource } from './still-image.js';
export type { CameraDriver, CameraInfo, CameraKind, CaptureStats, Frame } from './types.js';
