/**
 * Benchmark videos, made with ffmpeg in a temp dir from the live sample photo
 * `../shared/data/images/T1.jpg` (read in place, never copied into the repository).
 *
 * - `oneFaceVideo`: the equal-work video (bench/performance.md): one live face, upright, its
 *   detector box about 270 px wide at 640x480, in every frame; the simulated camera zooms and
 *   pans slowly and adds sensor noise, so every frame decodes and detects differently. The
 *   1920x1080 version is the same scene at 1440x1080, pillarboxed, with its own noise.
 * - `presenceVideo`: the latency video: a person steps in front of an empty camera view and
 *   leaves, `presences` times; it says at which frame each appearance starts.
 *
 * T1.jpg is stored sideways (its head points right); transpose=2 stands it upright.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../config/load.js';

export const T1 = path.resolve(packageRoot, '../shared/data/images/T1.jpg');

/** Upright T1 on a grey 640x520 canvas, then zoomed and panned into 640x480 frames. */
const SCENE =
  "transpose=2,pad=640:640:80:0:color=0x707070,crop=640:520:0:0,scale=800:650,zoompan=z='1.55+0.04*sin(on/40)':x='iw/2-(iw/zoom/2)+20*sin(on/25)':y='ih*0.42-(ih/zoom/2)+12*cos(on/31)':d=1:s=640x480";

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

const x264 = (preset: string) => ['-c:v', 'libx264', '-preset', preset, '-crf', '23', '-pix_fmt', 'yuv420p'];

/** Null when ../shared/data is absent (a user's clone): the caller skips and says so. */
export function oneFaceVideo(tmp: string, resolution: '640x480' | '1920x1080', frames = 360): string | null {
  if (!existsSync(T1)) return null;
  const small = path.join(tmp, 'one-face-640x480.mp4');
  if (!existsSync(small)) {
    ffmpeg([
      '-loop',
      '1',
      '-i',
      T1,
      '-vf',
      `${SCENE}:fps=15,noise=alls=6:allf=t`,
      '-frames:v',
      String(frames),
      ...x264('medium'),
      small,
    ]);
  }
  if (resolution === '640x480') return small;
  const big = path.join(tmp, 'one-face-1920x1080.mp4');
  if (!existsSync(big)) {
    ffmpeg([
      '-i',
      small,
      '-vf',
      'scale=1440:1080,pad=1920:1080:240:0:color=0x707070,noise=alls=4:allf=t',
      ...x264('veryfast'),
      big,
    ]);
  }
  return big;
}

/**
 * `src` re-encoded as Motion JPEG (every frame a JPEG, quality scale 3: what a USB camera's
 * MJPEG mode delivers), in an AVI next to it; both readers (OpenCV's FFmpeg backend in Node and
 * in Python) decode each frame on its own.
 */
export function mjpegVideo(src: string): string {
  const out = src.replace(/\.[^.]+$/, '.mjpeg.avi');
  if (!existsSync(out)) ffmpeg(['-i', src, '-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p', out]);
  return out;
}

export interface PresenceVideo {
  path: string;
  fps: number;
  /** Frame index (from 0) at which each presence starts: the first frame showing the face. */
  appearAt: number[];
  /** Frames per presence with the face in view. */
  faceFrames: number;
}

/**
 * `presences` times: `emptyS` seconds of an empty grey wall with sensor noise, then `faceS`
 * seconds of the person (hard cuts, as a person stepping into a narrow camera view), then
 * `tailS` seconds of the empty wall again (default: `emptyS`). The gap
 * is longer than the daemon's track loss plus cooldown (0.7 + 3 s by default), so each
 * appearance is a new presence, not the same person coming back.
 */
export function presenceVideo(
  tmp: string,
  {
    fps = 30,
    presences = 6,
    emptyS = 4.5,
    faceS = 2.5,
    tailS = emptyS,
  }: { fps?: number; presences?: number; emptyS?: number; faceS?: number; tailS?: number } = {},
): PresenceVideo | null {
  if (!existsSync(T1)) return null;
  const out = path.join(tmp, `presence-${fps}-${presences}-${emptyS}-${faceS}-${tailS}.mp4`);
  const empty = Math.round(emptyS * fps);
  const face = Math.round(faceS * fps);
  const period = empty + face;
  const total = period * presences + Math.round(tailS * fps);
  // Frame n shows the face when (n mod period) >= empty, for the first `presences` periods.
  const showFace = `gte(mod(n\\,${period})\\,${empty})*lt(n\\,${period * presences})`;
  ffmpeg([
    '-loop',
    '1',
    '-i',
    T1,
    '-f',
    'lavfi',
    '-i',
    `color=c=0x8a8478:s=640x480:r=${fps}`,
    '-filter_complex',
    `[0:v]${SCENE}:fps=${fps}[face];[1:v][face]overlay=enable='${showFace}',noise=alls=6:allf=t[v]`,
    '-map',
    '[v]',
    '-frames:v',
    String(total),
    ...x264('veryfast'),
    out,
  ]);
  return {
    path: out,
    fps,
    appearAt: Array.from({ length: presences }, (_, i) => i * period + empty),
    faceFrames: face,
  };
}
