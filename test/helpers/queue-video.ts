/**
 * A queue of people in front of one camera, made at test time (never committed): each step is a
 * person (one of the sample video's portraits, or a shared photo) or the empty room, for so
 * many seconds, hard cuts between steps as a person stepping into a narrow view. The room is
 * the sample video's empty scene; a person's still is pasted on it, shrunk by `zoom` (a person
 * further away). ffmpeg then sways the picture (1.5 degrees, 2.5 s period) and adds sensor noise
 * over time, and encodes H.264 at 15 fps, so no two frames are equal and the tracker has to
 * follow. `decideVideo` runs a video through the real CameraPipeline frame by frame on the
 * video's own clock (the result does not depend on this machine's speed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { type Config, cameraSchema } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';
import type { Logger } from '../../core/log.js';
import type { SessionDecision } from '../../daemon/decision/types.js';
import type { FaceDetector } from '../../daemon/detect/types.js';
import type { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { CameraPipeline, type FrameResult } from '../../daemon/pipeline/pipeline.js';
import { createCamera } from '../../drivers/camera/index.js';
import { readImageBgr } from '../../drivers/camera/still-image.js';
import { repoRoot, shared } from './paths.js';

export const QUEUE_FPS = 15;
const W = 640;
const H = 480;
const SAMPLE = path.join(repoRoot, 'media/demo-kiosk.mp4');

/** The sample video's portraits (media/README.md timeline): second at which each is grabbed. */
const PORTRAITS: Record<string, number> = { hopper: 1, astronaut: 10 };
const ROOM_AT_S = 8;

export interface QueueStep {
  /** 'hopper' / 'astronaut' (sample video), a file of ../shared/data/images, or null: nobody. */
  who: string | null;
  seconds: number;
  /** Shrink the person by this (1: as in the source; 0.4: much further away). */
  zoom?: number;
  /** Shift the person right by this many pixels (negative: left). */
  dx?: number;
}

export interface QueueVideo {
  file: string;
  /** Each step's first frame and frame count, in the video's frames (QUEUE_FPS). */
  steps: (QueueStep & { firstFrame: number; frames: number })[];
  frames: number;
}

function grab(atS: number, out: string): Mat {
  const r = spawnSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-ss',
    String(atS),
    '-i',
    SAMPLE,
    '-frames:v',
    '1',
    out,
  ]);
  assert.equal(r.status, 0, r.stderr.toString());
  return cv.imread(out);
}

/** The person's picture on the room, shrunk by zoom around the centre and shifted by dx. */
function compose(room: Mat, person: Mat, zoom: number, dx: number): Mat {
  // Fit the person's picture into the frame, then shrink it by zoom.
  const fit = Math.min(W / person.cols, H / person.rows) * zoom;
  const w = Math.max(2, Math.round(person.cols * fit));
  const h = Math.max(2, Math.round(person.rows * fit));
  const small = person.resize(h, w, 0, 0, cv.INTER_AREA);
  const out = room.copy();
  const x = Math.max(0, Math.min(W - w, Math.round((W - w) / 2 + dx)));
  const y = Math.max(0, Math.min(H - h, Math.round((H - h) / 2)));
  small.copyTo(out.getRegion(new cv.Rect(x, y, w, h)));
  small.release();
  return out;
}

export async function queueVideo(dir: string, name: string, steps: QueueStep[]): Promise<QueueVideo> {
  const work = path.join(dir, `${name}-frames`);
  mkdirSync(work, { recursive: true });
  const room = grab(ROOM_AT_S, path.join(work, 'room.png'));
  const sources = new Map<string, Mat>();
  const source = async (who: string): Promise<Mat> => {
    let m = sources.get(who);
    if (!m) {
      m =
        PORTRAITS[who] !== undefined
          ? grab(PORTRAITS[who] as number, path.join(work, `${who}.png`))
          : await readImageBgr(shared(`images/${who}`));
      sources.set(who, m);
    }
    return m;
  };
  let frame = 0;
  const out: QueueVideo['steps'] = [];
  for (const [i, step] of steps.entries()) {
    const still = path.join(work, `step${i}.png`);
    const pic =
      step.who === null ? room.copy() : compose(room, await source(step.who), step.zoom ?? 1, step.dx ?? 0);
    cv.imwrite(still, pic);
    pic.release();
    const n = Math.round(step.seconds * QUEUE_FPS);
    for (let k = 0; k < n; k++)
      symlinkSync(still, path.join(work, `f${String(frame + k).padStart(6, '0')}.png`));
    out.push({ ...step, firstFrame: frame, frames: n });
    frame += n;
  }
  const file = path.join(dir, `${name}.mp4`);
  const r = spawnSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-framerate',
    String(QUEUE_FPS),
    '-i',
    path.join(work, 'f%06d.png'),
    '-vf',
    "rotate='0.026*sin(2*PI*t/2.5)':fillcolor=0x707070,noise=alls=5:allf=t,format=yuv420p",
    '-c:v',
    'libx264',
    '-crf',
    '20',
    '-preset',
    'veryfast',
    file,
  ]);
  assert.equal(r.status, 0, r.stderr.toString());
  return { file, steps: out, frames: frame };
}

export interface QueueRun {
  decisions: SessionDecision[];
  /** Per frame: its time on the video's clock, the faces the pipeline considered (track, presence held/new, verdict). */
  frames: (Pick<FrameResult, 'faces'> & { t: number })[];
  processed: number;
}

/** Every frame of `file` through a real CameraPipeline, timed by its frame number. */
export async function decideVideo(
  file: string,
  deps: {
    detector: FaceDetector;
    liveness: LivenessModel;
    config: Pick<Config, 'quality' | 'decision'>;
    log: Logger;
    decideFrom?: number;
    /** Classify held faces too (decisions unchanged), so every frame can be replayed under another rule. */
    scoreHeldFaces?: boolean;
  },
): Promise<QueueRun> {
  const camera = createCamera(
    { ...cameraSchema.parse({}), source: file, loop: false, realtime: false },
    { repoRoot },
  );
  let clock = 0;
  const frames: QueueRun['frames'] = [];
  const pipeline = new CameraPipeline({
    cameraId: 'front',
    camera,
    detector: deps.detector,
    liveness: deps.liveness,
    config: deps.config,
    log: deps.log,
    ...(deps.decideFrom === undefined ? {} : { decideFrom: deps.decideFrom }),
    stages: { record: () => {} },
    sink: { decision: () => {} },
    onFrame: (r) => frames.push({ t: r.frame.capturedMono, faces: r.faces }),
    now: () => clock,
  });
  pipeline.scoreHeldFaces = deps.scoreHeldFaces ?? false;
  const decisions: SessionDecision[] = [];
  await camera.open();
  for await (const f of camera.frames()) {
    // Frame n (from 0, seq n + 1) at n / fps: the timeline of queueVideo.
    clock = ((f.seq - 1) * 1000) / QUEUE_FPS;
    try {
      decisions.push(...(await pipeline.processFrame({ ...f, capturedMono: clock })));
    } finally {
      f.mat.release();
    }
  }
  await camera.close();
  return { decisions, frames, processed: frames.length };
}
