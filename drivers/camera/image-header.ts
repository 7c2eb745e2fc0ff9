/**
 * The size an image file declares, read from its header before anything decodes it (issue 24,
 * finding 4): an 875 KB PNG may declare 30000x30000 pixels, which OpenCV would try to decode
 * into 2.7 GB. PNG (IHDR) and JPEG (the SOFn segment) are parsed here; other formats are
 * refused, since their declared size is not checked. The limits admit every camera frame and
 * photo this daemon is for (an 8K frame is 33 Mpx, a 48 Mpx phone photo 8000x6000).
 */

/** Images larger than this (either side) are refused before decoding. */
export const MAX_IMAGE_SIDE = 16_384;
/** Images of more pixels than this are refused before decoding (about 150 MB as BGR). */
export const MAX_IMAGE_PIXELS = 50_000_000;
/** Image files larger than this are refused unread. */
export const MAX_IMAGE_FILE_BYTES = 64 * 2 ** 20;

export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function png(bytes: Buffer): ImageHeader | null {
  // Signature, then the IHDR chunk: length 13, "IHDR", width and height (big-endian).
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  if (bytes.readUInt32BE(8) !== 13 || bytes.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { format: 'png', width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT (C4), JPG (C8), DAC (CC). */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpeg(bytes: Buffer): ImageHeader | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1] as number;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Markers without a length: TEM, RSTn.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data or end before any frame header
    const length = bytes.readUInt16BE(i + 2);
    if (length < 2) return null;
    if (SOF.has(marker)) {
      if (i + 9 > bytes.length) return null;
      return { format: 'jpeg', height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return null;
}

/** The declared format and size, or null when the bytes are neither a PNG nor a JPEG header. */
export function readImageHeader(bytes: Buffer): ImageHeader | null {
  return png(bytes) ?? jpeg(bytes);
}

/** Why an image of these bytes is not decoded (null: decode it). */
export function imageHeaderProblem(bytes: Buffer): string | null {
  const h = readImageHeader(bytes);
  if (!h) return 'not a PNG or JPEG image (only these are decoded: their declared size is checked first)';
  if (h.width === 0 || h.height === 0) return `declares ${h.width}x${h.height} pixels`;
  if (h.width > MAX_IMAGE_SIDE || h.height > MAX_IMAGE_SIDE || h.width * h.height > MAX_IMAGE_PIXELS) {
    return `declares ${h.width}x${h.height} pixels, more than allowed (${MAX_IMAGE_SIDE} a side, ${MAX_IMAGE_PIXELS} in all)`;
  }
  return null;
}
