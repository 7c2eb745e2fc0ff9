import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { shared } from './paths.js';

/**
 * A short 15 fps H.264 video of one shared sample photo (`images/NAME`), written to `out` at test
 * time (never committed). Pixels as stored (-noautorotate): the photos carry a stale EXIF rotation
 * tag on already-upright pixels, and a camera applies no tag. `filter` is an ffmpeg -vf chain
 * applied before the pixel format (zoom, shift, brightness).
 */
export function photoVideo(photo: string, out: string, opts: { seconds: number; filter?: string }): string {
  const vf = [opts.filter, 'format=yuv420p'].filter(Boolean).join(',');
  const r = spawnSync(
    'ffmpeg',
    [
      '-loglevel',
      'error',
      '-y',
      '-noautorotate',
      '-loop',
      '1',
      '-framerate',
      '15',
      '-i',
      shared(`images/${photo}`),
      '-t',
      String(opts.seconds),
      '-vf',
      vf,
      '-c:v',
      'libx264',
      '-crf',
      '18',
      out,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `ffmpeg: ${r.stderr}`);
  return out;
}
