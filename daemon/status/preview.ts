/**
 * The live preview as an MJPEG stream. Nothing is copied, drawn or encoded while no page is
 * open: `offer()` is called synchronously from the pipeline's frame event and returns at once
 * unless a client is connected, the preview rate allows another frame, and no encode is in
 * flight. The frame is copied there (the pipeline releases its Mat after the event), drawn
 * on, and JPEG-encoded on libuv's thread pool. A client whose socket has not drained the
 * previous frame skips this one: a slow viewer never buffers more than one frame, and never
 * slows the pipeline.
 */
import type { Mat } from '../../core/cv.js';
import { cv } from '../../core/cv.js';
import type { FrameResult } from '../pipeline/pipeline.js';
import { drawOverlay, overlayShapes } from './overlay.js';

export const MJPEG_BOUNDARY = 'fghvframe';
export const MJPEG_CONTENT_TYPE = `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`;

/** What the hub needs of an HTTP response (a subset of ServerResponse). */
export interface PreviewClient {
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(): void;
}

export interface PreviewHubOptions {
  fps: number;
  /** Streams served at once; more are refused (each costs a socket buffer). */
  maxClients?: number;
  /** Draws the overlay on the copy and encodes it; defaults to OpenCV drawing and JPEG at quality 80. */
  render?: (copy: Mat, faces: FrameResult['faces']) => Promise<Buffer>;
  now?: () => number;
  onError?: (err: unknown) => void;
}

export const JPEG_QUALITY = 80;

export async function renderPreviewJpeg(copy: Mat, faces: FrameResult['faces']): Promise<Buffer> {
  drawOverlay(copy, overlayShapes(faces, copy.cols, copy.rows));
  return cv.imencodeAsync('.jpg', copy, [cv.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]);
}

/** One multipart part: boundary, headers, the JPEG, CRLF. */
export function mjpegPart(jpeg: Buffer): Buffer {
  const head = `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), jpeg, Buffer.from('\r\n', 'latin1')]);
}

export class PreviewHub {
  private readonly clients = new Set<PreviewClient>();
  private inFlight: Promise<void> | null = null;
  private lastStartMs = Number.NEGATIVE_INFINITY;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly render: NonNullable<PreviewHubOptions['render']>;
  private closed = false;
  /** Frames copied and encoded (only while a client was connected). */
  encoded = 0;
  /** Parts written to clients. */
  sent = 0;
  /** Parts a client missed because it had not drained the previous one. */
  skippedSlow = 0;

  constructor(private readonly opts: PreviewHubOptions) {
    // 10% slack: frames arrive on the camera's clock, so an exact interval would skip one too many.
    this.intervalMs = (1000 / opts.fps) * 0.9;
    this.now = opts.now ?? (() => performance.now());
    this.render = opts.render ?? renderPreviewJpeg;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Registers a stream; false when the hub is full or closed (the caller answers 503). */
  add(client: PreviewClient): boolean {
    if (this.closed || this.clients.size >= (this.opts.maxClients ?? 4)) return false;
    this.clients.add(client);
    return true;
  }

  remove(client: PreviewClient): void {
    this.clients.delete(client);
  }

  /** Called synchronously for every processed frame; the frame's Mat is valid only during this call. */
  offer(result: FrameResult): void {
    if (this.clients.size === 0 || this.inFlight !== null) return;
    const now = this.now();
    if (now - this.lastStartMs < this.intervalMs) return;
    let ready = false;
    for (const c of this.clients) if (!c.writableNeedDrain && !c.destroyed) ready = true;
    if (!ready) {
      this.skippedSlow += this.clients.size;
      return;
    }
    this.lastStartMs = now;
    const copy = result.frame.mat.copy();
    this.encoded++;
    this.inFlight = this.render(copy, result.faces)
      .then((jpeg) => this.broadcast(jpeg))
      .catch((err) => this.opts.onError?.(err))
      .finally(() => {
        // External memory tracking is off (core/cv.ts): free the copy now, not at some GC.
        copy.release();
        this.inFlight = null;
      });
  }

  private broadcast(jpeg: Buffer): void {
    if (this.clients.size === 0) return;
    const part = mjpegPart(jpeg);
    for (const c of this.clients) {
      if (c.destroyed) {
        this.clients.delete(c);
        continue;
      }
      if (c.writableNeedDrain) {
        this.skippedSlow++;
        continue;
      }
      c.write(part);
      this.sent++;
    }
  }

  /** Waits for an encode in flight, then ends every stream. */
  async close(): Promise<void> {
    this.closed = true;
    await this.inFlight;
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
