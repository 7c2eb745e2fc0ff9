/**
 * The live preview as an MJPEG stream. Nothing is copied, drawn or encoded while no page is
 * open: `offer()` is called synchronously from the pipeline's frame event and returns at once
 * unless a client is connected, the preview rate allows another frame, and no encode is in
 * flight. The frame is copied there (the pipeline releases its Mat after the event), drawn
 * on, and JPEG-encoded on libuv's thread pool. A client whose socket has not drained the
 * previous frame skips this one: a slow viewer never buffers more than one frame, and never
 * slows the pipeline. A viewer that has not drained for `stallTimeoutMs` is disconnected
 * (issue 24, finding 6): otherwise connections that never read would hold every preview slot
 * and every later viewer would get 503 for as long as they stay open. A stall shows only once
 * the kernel's socket buffers are full (megabytes on Linux: minutes of preview), so a full hub
 * also makes room for a new viewer: the one stalled longest, else the one connected longest,
 * leaves once it has had PREVIEW_FAIR_SHARE_MS. Connections that never read hold a slot for
 * that long at most, and a new viewer waits no longer than that for one.
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
  /** Closes the connection at once (a stalled viewer); end() when absent. */
  destroy?(): void;
}

/** A viewer that has not drained the last frame for this long is disconnected. */
export const PREVIEW_STALL_TIMEOUT_MS = 10_000;
/** With every slot taken, a viewer connected this long gives its slot to a new one. */
export const PREVIEW_FAIR_SHARE_MS = 30_000;

export interface PreviewHubOptions {
  fps: number;
  /** Streams served at once; more are refused (each costs a socket buffer). */
  maxClients?: number;
  /** Draws the overlay on the copy and encodes it; defaults to OpenCV drawing and JPEG at quality 80. */
  render?: (copy: Mat, faces: FrameResult['faces']) => Promise<Buffer>;
  now?: () => number;
  onError?: (err: unknown) => void;
  /** Default PREVIEW_STALL_TIMEOUT_MS. */
  stallTimeoutMs?: number;
  /** Default PREVIEW_FAIR_SHARE_MS. */
  fairShareMs?: number;
  /** Called for each viewer disconnected for not reading, or to make room for a new one. */
  onStalled?: (client: PreviewClient, why: 'stalled' | 'room') => void;
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
  /** When each viewer was first seen not drained (absent: drained at the last look). */
  private readonly stalledSince = new Map<PreviewClient, number>();
  /** When each viewer was added. */
  private readonly addedAt = new Map<PreviewClient, number>();
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
  /** Viewers disconnected: not drained within stallTimeoutMs, or to make room after their fair share. */
  droppedStalled = 0;

  constructor(private readonly opts: PreviewHubOptions) {
    // 10% slack: frames arrive on the camera's clock, so an exact interval would skip one too many.
    this.intervalMs = (1000 / opts.fps) * 0.9;
    this.now = opts.now ?? (() => performance.now());
    this.render = opts.render ?? renderPreviewJpeg;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Registers a stream; false when the hub is closed, or full with no viewer that has had its
   * fair share (the caller answers 503). When full, the viewer stalled longest, else the one
   * connected longest, gives up its slot once it has had PREVIEW_FAIR_SHARE_MS.
   */
  add(client: PreviewClient): boolean {
    if (this.closed) return false;
    if (this.clients.size >= (this.opts.maxClients ?? 4)) {
      const now = this.now();
      const share = this.opts.fairShareMs ?? PREVIEW_FAIR_SHARE_MS;
      const byAge = [...this.clients].sort(
        (a, b) =>
          (this.stalledSince.get(a) ?? Number.POSITIVE_INFINITY) -
            (this.stalledSince.get(b) ?? Number.POSITIVE_INFINITY) ||
          (this.addedAt.get(a) ?? 0) - (this.addedAt.get(b) ?? 0),
      );
      const leaving = byAge.find((c) => now - (this.addedAt.get(c) ?? now) >= share);
      if (!leaving) return false;
      this.disconnect(leaving, 'room');
    }
    this.clients.add(client);
    this.addedAt.set(client, this.now());
    return true;
  }

  remove(client: PreviewClient): void {
    this.clients.delete(client);
    this.stalledSince.delete(client);
    this.addedAt.delete(client);
  }

  private disconnect(c: PreviewClient, why: 'stalled' | 'room'): void {
    this.remove(c);
    this.droppedStalled++;
    if (c.destroy) c.destroy();
    else c.end();
    this.opts.onStalled?.(c, why);
  }

  /** Disconnects the viewers that have not drained for stallTimeoutMs. */
  private dropStalled(now: number): void {
    const limit = this.opts.stallTimeoutMs ?? PREVIEW_STALL_TIMEOUT_MS;
    for (const c of this.clients) {
      if (!c.writableNeedDrain || c.destroyed) {
        this.stalledSince.delete(c);
        continue;
      }
      const since = this.stalledSince.get(c);
      if (since === undefined) this.stalledSince.set(c, now);
      else if (now - since >= limit) this.disconnect(c, 'stalled');
    }
  }

  /** Called synchronously for every processed frame; the frame's Mat is valid only during this call. */
  offer(result: FrameResult): void {
    if (this.clients.size === 0) return;
    const now = this.now();
    this.dropStalled(now);
    if (this.clients.size === 0 || this.inFlight !== null) return;
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
    this.stalledSince.clear();
    this.addedAt.clear();
  }
}
