/**
 * Decoding a camera's JPEG frame (MJPEG: what most USB cameras deliver) at the size a consumer
 * needs. libjpeg scales by 1/2, 1/4 or 1/8 inside the inverse DCT (OpenCV's IMREAD_REDUCED_*
 * flags), so a reduced decode skips most of the work instead of decoding everything and
 * resizing: at 1920x1080, 1.35 ms for 480x270 against 3.5 ms for the full frame (measured
 * here, bench/performance.md "Scaled MJPEG decode").
 */
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { imageHeaderProblem, readImageHeader } from './image-header.js';
import type { Frame, JpegScale, JpegSource } from './types.js';

export type { JpegScale };

const COLOR_FLAG: Record<JpegScale, number> = {
  1: cv.IMREAD_COLOR,
  2: cv.IMREAD_REDUCED_COLOR_2,
  4: cv.IMREAD_REDUCED_COLOR_4,
  8: cv.IMREAD_REDUCED_COLOR_8,
};

/**
 * The largest scale whose decoded image still covers `need` x `need` pixels, the detector's
 * input, on its longer side (the detector letterboxes the longer side to its input): a
 * reduced decode never makes the detector upscale.
 */
export function scaleFor(width: number, height: number, need: number): JpegScale {
  const longer = Math.max(width, height);
  for (const s of [8, 4, 2] as const) if (Math.ceil(longer / s) >= need) return s;
  return 1;
}

/**
 * Checked before OpenCV sees the bytes: its imdecode aborts the whole process on an empty
 * buffer (an uncaught C++ assertion, not a JavaScript exception).
 */
function checkJpeg(jpeg: Buffer): void {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8)
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `not a JPEG frame (${jpeg.length} bytes, no start-of-image marker)`,
    );
  // The declared size is checked before the decoder allocates for it (image-header.ts limits).
  const h = readImageHeader(jpeg);
  const why = h ? imageHeaderProblem(jpeg) : null;
  if (why) throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, `JPEG frame ${why}`);
}

/** Decode a JPEG to 8-bit BGR at 1/scale of its size (rounded up, as libjpeg does). */
export function decodeJpeg(jpeg: Buffer, scale: JpegScale = 1): Mat {
  checkJpeg(jpeg);
  let mat: Mat;
  try {
    mat = cv.imdecode(jpeg, COLOR_FLAG[scale]);
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `not a decodable JPEG frame: ${(e as Error).message}`,
    );
  }
  if (mat.empty)
    throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, `not a decodable JPEG frame (${jpeg.length} bytes)`);
  return mat;
}

/** A JPEG frame larger than this is not a camera frame (a broken stream): it is skipped. */
export const MAX_JPEG_FRAME_BYTES = 32 * 2 ** 20;

/**
 * Splits a byte stream of concatenated JPEG images (ffmpeg's `-f mjpeg` output, what an MJPEG
 * camera sends) into single images. It follows the JPEG structure, not a search for the
 * end-of-image bytes: marker segments are skipped by their length (an EXIF thumbnail holds an
 * SOI/EOI pair of its own), and in entropy-coded data a 0xFF byte is followed by 0x00
 * (stuffing) or a restart marker, so the first other marker there ends the scan. Bytes that do
 * not follow the structure are dropped up to the next start-of-image and counted (`skipped`).
 */
export class JpegStreamSplitter {
  private buf: Buffer = Buffer.alloc(0);
  /** Where parsing resumes in `buf` (0: looking for a start-of-image). */
  private at = 0;
  private inScan = false;
  /** Bytes dropped because they were not part of a well-formed JPEG image. */
  skipped = 0;

  constructor(private readonly maxFrameBytes = MAX_JPEG_FRAME_BYTES) {}

  /** Feed bytes; returns the images completed by them, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = this.parse();
      if (end === null) break;
      if (end > 0) out.push(Buffer.from(this.buf.subarray(0, end)));
      this.buf = this.buf.subarray(Math.abs(end));
      this.at = 0;
      this.inScan = false;
    }
    if (this.buf.length > this.maxFrameBytes) this.resync(this.buf.length);
    return out;
  }

  /**
   * Advance over `buf`: the image's length when complete, a negative count of bytes to drop
   * (garbage before an SOI or a malformed image), or null when more bytes are needed.
   */
  private parse(): number | null {
    const b = this.buf;
    if (this.at === 0) {
      if (b.length < 2) return null;
      if (b[0] !== 0xff || b[1] !== 0xd8) return -this.garbageBefore(1);
      this.at = 2;
    }
    let i = this.at;
    for (;;) {
      if (this.inScan) {
        // Entropy-coded data: skip to the first 0xFF that is not stuffing or a restart marker.
        for (;;) {
          const ff = b.indexOf(0xff, i);
          if (ff < 0 || ff + 1 >= b.length) {
            this.at = ff < 0 ? b.length : ff;
            return null;
          }
          const next = b[ff + 1] as number;
          if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
            i = ff + (next === 0xff ? 1 : 2);
            continue;
          }
          i = ff;
          this.inScan = false;
          break;
        }
      }
      if (i + 2 > b.length) {
        this.at = i;
        return null;
      }
      // Malformed (an image cut short, a broken stream): resync at the next SOI after this one's.
      if (b[i] !== 0xff) return -this.garbageBefore(1);
      const marker = b[i + 1] as number;
      if (marker === 0xff) {
        i++;
        continue;
      }
      if (marker === 0xd9) return i + 2;
      if (marker === 0xd8) return -this.garbageBefore(1); // a new image before this one ended
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      if (i + 4 > b.length) {
        this.at = i;
        return null;
      }
      const length = b.readUInt16BE(i + 2);
      if (length < 2) return -this.garbageBefore(1);
      if (i + 2 + length > b.length) {
        this.at = i;
        return null;
      }
      i += 2 + length;
      if (marker === 0xda) this.inScan = true;
    }
  }

  /** Bytes to drop: everything before the next start-of-image at or after `from` (at least 1). */
  private garbageBefore(from: number): number {
    const soi = this.buf.indexOf(Buffer.from([0xff, 0xd8]), Math.max(1, from));
    const n = soi < 0 ? Math.max(1, this.buf.length - 1) : soi;
    this.skipped += n;
    return n;
  }

  private resync(n: number): void {
    this.skipped += n;
    this.buf = Buffer.alloc(0);
    this.at = 0;
    this.inScan = false;
  }
}

/**
 * One camera frame as the camera compressed it, decoded on demand at the scales consumers ask
 * for (each decoded once, on libuv's pool): the detector reads a reduced decode, the per-face
 * step the full one, and a frame nobody needs in full is never decoded in full.
 */
export class JpegImage implements JpegSource {
  private readonly pending = new Map<JpegScale, Promise<Mat>>();
  private readonly done = new Map<JpegScale, Mat>();
  private released = false;

  private refusal: KioskError | null | undefined;

  /**
   * `width` x `height`: the stream's size. An image whose header declares another size is
   * refused before any decode (KIOSK_E_CAMERA_READ_FAILED): a camera's images all have one
   * size, and a forged header (65535 x 65535) must not make the decoder allocate gigabytes.
   */
  constructor(
    readonly bytes: Buffer,
    readonly width: number,
    readonly height: number,
  ) {}

  /** The image at 1/scale (cached). Rejects with KIOSK_E_CAMERA_READ_FAILED when it does not decode. */
  decode(scale: JpegScale): Promise<Mat> {
    const have = this.done.get(scale);
    if (have) return Promise.resolve(have);
    const refused = this.refused();
    if (refused) return Promise.reject(refused);
    let p = this.pending.get(scale);
    if (!p) {
      p = decodeJpegAsync(this.bytes, scale).then((mat) => this.keep(scale, mat));
      this.pending.set(scale, p);
    }
    return p;
  }

  /** The full-resolution image now (decoded here if no decode finished yet). */
  full(): Mat {
    const have = this.done.get(1);
    if (have) return have;
    const refused = this.refused();
    if (refused) throw refused;
    return this.keep(1, decodeJpeg(this.bytes, 1));
  }

  /** Why this image is not decoded (its header declares a size other than the stream's), or null. */
  private refused(): KioskError | null {
    if (this.refusal === undefined) {
      const h = readImageHeader(this.bytes);
      this.refusal =
        h && (h.width !== this.width || h.height !== this.height)
          ? new KioskError(
              ErrorCodes.CAMERA_READ_FAILED,
              `JPEG frame declares ${h.width}x${h.height} pixels, the stream is ${this.width}x${this.height}: not decoded`,
              { details: { declared: [h.width, h.height], stream: [this.width, this.height] } },
            )
          : null;
    }
    return this.refusal;
  }

  /** Whether the full-resolution image was decoded (for counters and benchmarks). */
  get fullDecoded(): boolean {
    return this.done.has(1);
  }

  /** Free every decode, now or when an in-flight one finishes. */
  release(): void {
    this.released = true;
    for (const mat of this.done.values()) mat.release();
    this.done.clear();
  }

  private keep(scale: JpegScale, mat: Mat): Mat {
    const have = this.done.get(scale);
    if (have) {
      if (have !== mat) mat.release();
      return have;
    }
    if (this.released) {
      mat.release();
      throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, 'JPEG frame released before its decode finished');
    }
    this.done.set(scale, mat);
    return mat;
  }
}

/** decodeJpeg on libuv's thread pool (the event loop keeps running meanwhile). */
export async function decodeJpegAsync(jpeg: Buffer, scale: JpegScale = 1): Promise<Mat> {
  checkJpeg(jpeg);
  let mat: Mat;
  try {
    mat = await cv.imdecodeAsync(jpeg, COLOR_FLAG[scale]);
  } catch (e) {
    throw new KioskError(
      ErrorCodes.CAMERA_READ_FAILED,
      `not a decodable JPEG frame: ${(e as Error).message}`,
    );
  }
  if (mat.empty)
    throw new KioskError(ErrorCodes.CAMERA_READ_FAILED, `not a decodable JPEG frame (${jpeg.length} bytes)`);
  return mat;
}

/** A frame whose source delivered a JPEG: `mat` is the full decode, made on first use. */
export class JpegFrame implements Frame {
  constructor(
    readonly jpeg: JpegSource,
    readonly capturedAt: number,
    readonly capturedMono: number,
    readonly seq: number,
  ) {}

  get mat(): Mat {
    return this.jpeg.full();
  }

  get width(): number {
    return this.jpeg.width;
  }

  get height(): number {
    return this.jpeg.height;
  }
}

/** Free a frame's image(s) without decoding anything. */
export function releaseFrame(frame: Frame): void {
  if (frame.jpeg) frame.jpeg.release();
  else frame.mat.release();
}
