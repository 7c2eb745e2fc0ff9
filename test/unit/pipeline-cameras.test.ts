/**
 * The camera loop of CameraPipeline with scripted cameras and a simulated single inference
 * worker (FIFO, one job at a time, like InferenceWorker): stale frames are never decided on,
 * a lost camera turns 'down' and comes back 'running', and two cameras share the worker
 * without a stalled or slow one starving the other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import type { Mat } from '../../core/cv.js';
import { silentLogger } from '../../core/log.js';
import type { FaceDetection, FaceDetector } from '../../daemon/detect/types.js';
import type { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { CameraPipeline, type CameraState, DETECT_AHEAD } from '../../daemon/pipeline/pipeline.js';
import { FakeCamera } from '../../drivers/camera/fake.js';
import { SupervisedCamera } from '../../drivers/camera/supervised.js';
import type { CameraDriver } from '../../drivers/camera/types.js';
import { StalledCamera } from '../helpers/camera-fixtures.js';
import { until } from '../helpers/wait.js';

/** One job at a time, first come first served: the shape of the real inference worker. */
class SerialWorker {
  private tail: Promise<void> = Promise.resolve();
  jobs: string[] = [];
  run(who: string, ms: number): Promise<void> {
    const job = this.tail.then(
      () =>
        new Promise<void>((resolve) => {
          this.jobs.push(who);
          setTimeout(resolve, ms);
        }),
    );
    this.tail = job;
    return job;
  }
}

function face(i: number): FaceDetection {
  const x = 10 + i * 12;
  return {
    box: [x, 10, 10, 10],
    landmarks: [
      [x, 12],
      [x + 8, 12],
      [x + 4, 15],
      [x + 2, 18],
      [x + 6, 18],
    ],
    score: 0.9,
  };
}

function models(worker: SerialWorker, who: string, faces: number, detectCalls: { n: number }) {
  const detector = {
    name: 'blazeface',
    inputWidth: 128,
    inputHeight: 128,
    provider: 'cpu',
    model: 'fake',
    detect: async (_image: Mat) => {
      detectCalls.n++;
      await worker.run(who, 3);
      return Array.from({ length: faces }, (_, i) => face(i));
    },
    close: async () => {},
  } satisfies FaceDetector;
  const liveness = {
    classify: async () => {
      await worker.run(who, 3);
      return { verdict: 'live', scores: { p_live: 0.9 }, alignMs: 0, inferMs: 3 };
    },
  } as unknown as LivenessModel;
  return { detector, liveness };
}

const config = configSchema.parse({
  quality: { min_face_px: 5, min_sharpness: 0, min_brightness: 0, max_brightness: 1 },
  decision: { max_frame_age_ms: 1000 },
});

function pipelineFor(
  id: string,
  camera: CameraDriver,
  m: ReturnType<typeof models>,
  states: CameraState[] = [],
  now?: () => number,
) {
  return new CameraPipeline({
    cameraId: id,
    camera,
    ...m,
    config,
    log: silentLogger(),
    stages: { record: () => {} },
    sink: { decision: () => {} },
    onState: (s) => {
      states.push(s);
    },
    ...(now ? { now } : {}),
  });
}

function supervised(id: string, create: () => CameraDriver, onEvent?: (p: CameraPipeline) => void) {
  let target: CameraPipeline | null = null;
  const cam = new SupervisedCamera({
    id,
    create,
    stallTimeoutMs: 150,
    minMs: 50,
    maxMs: 100,
    finite: false,
    onEvent: (e) => target?.sourceChanged(e),
  });
  const bind = (p: CameraPipeline) => {
    target = p;
    onEvent?.(p);
  };
  return { cam, bind };
}

describe('camera pipeline loop', () => {
  it('a frame older than max_frame_age_ms is counted stale and never reaches the detector', async () => {
    for (const ageMs of [5000, 0]) {
      const calls = { n: 0 };
      const m = models(new SerialWorker(), 'a', 1, calls);
      // The pipeline's clock runs ageMs ahead of the capture stamps: every frame is that old.
      const p = pipelineFor(
        'a',
        new FakeCamera({ count: 5, intervalMs: null }),
        m,
        [],
        () => performance.now() + ageMs,
      );
      await p.start();
      await p.done();
      await p.stop();
      if (ageMs > config.decision.max_frame_age_ms) {
        assert.deepEqual([p.counters.stale, p.counters.processed, calls.n], [5, 0, 0]);
      } else {
        assert.deepEqual([p.counters.stale, p.counters.processed, calls.n], [0, 5, 5]);
      }
    }
  });

  it('a camera missing at start is down, and running once its frames flow', async () => {
    const states: CameraState[] = [];
    let opens = 0;
    const s = supervised('b', () =>
      ++opens <= 3
        ? new FakeCamera({ openError: new Error('unplugged') as never })
        : new FakeCamera({ intervalMs: 10 }),
    );
    const p = pipelineFor('b', s.cam, models(new SerialWorker(), 'b', 0, { n: 0 }), states);
    s.bind(p);
    await p.start();
    assert.equal(p.cameraState, 'down');
    await until(() => p.counters.processed >= 3, 5000, 'frames after the camera appeared');
    assert.equal(p.cameraState, 'running');
    await p.stop();
    assert.deepEqual(states.slice(0, 2), ['down', 'running']);
  });

  it('a stalled camera does not hold up another camera on the same worker', async () => {
    const worker = new SerialWorker();
    const aStates: CameraState[] = [];
    const bStates: CameraState[] = [];
    const a = supervised('a', () => new FakeCamera({ intervalMs: 10, width: 64, height: 48 }));
    const b = supervised('b', () => new StalledCamera());
    const pa = pipelineFor('a', a.cam, models(worker, 'a', 0, { n: 0 }), aStates);
    const pb = pipelineFor('b', b.cam, models(worker, 'b', 0, { n: 0 }), bStates);
    a.bind(pa);
    b.bind(pb);
    await Promise.all([pa.start(), pb.start()]);
    try {
      await until(() => bStates.includes('down'), 3000, 'the stalled camera to be reported down');
      const atLoss = pa.counters.processed;
      await until(() => pa.counters.processed >= atLoss + 20, 5000, 'camera a to keep processing');
      assert.equal(pa.cameraState, 'running');
      assert.equal(pb.counters.processed, 0);
    } finally {
      await Promise.all([pa.stop(), pb.stop()]);
    }
  });

  it('a slow camera (many faces, many inferences a frame) does not starve a quick one', async (t) => {
    const worker = new SerialWorker();
    const quick = pipelineFor(
      'quick',
      new FakeCamera({ intervalMs: 10, width: 96, height: 48 }),
      models(worker, 'quick', 0, { n: 0 }),
    );
    const slow = pipelineFor(
      'slow',
      new FakeCamera({ intervalMs: 10, width: 96, height: 48 }),
      models(worker, 'slow', 5, { n: 0 }),
    );
    await Promise.all([quick.start(), slow.start()]);
    try {
      await until(() => slow.counters.processed >= 10, 10_000, 'the slow camera to process 10 frames');
    } finally {
      await Promise.all([quick.stop(), slow.stop()]);
    }
    const q = quick.counters.processed;
    const s = slow.counters.processed;
    t.diagnostic(`quick ${q} frames, slow ${s} frames (${slow.counters.inferences} inferences)`);
    // FIFO with at most two frames in flight per camera (detect-ahead): the worker alternates
    // between the cameras' jobs, so the quick camera finishes several frames per slow frame.
    assert.ok(q >= 2 * s, `quick camera starved: ${q} frames against ${s}`);
    const share = worker.jobs.filter((j) => j === 'quick').length / worker.jobs.length;
    assert.ok(share > 0.25, `quick camera got ${Math.round(share * 100)}% of the worker's jobs`);
  });
});

describe('camera pipeline: weak faces', () => {
  it('a face below the deciding score is counted and shown in guidance, never decided on', async () => {
    const weakFace = { ...face(0), score: 0.4 };
    const detector = {
      name: 'blazeface',
      inputWidth: 128,
      inputHeight: 128,
      provider: 'cpu',
      model: 'fake',
      detect: async () => [weakFace],
      close: async () => {},
    } satisfies FaceDetector;
    let classified = 0;
    const liveness = {
      classify: async () => {
        classified++;
        return { verdict: 'live', scores: { p_live: 0.9 }, alignMs: 0, inferMs: 0 };
      },
    } as unknown as LivenessModel;
    const decisions: unknown[] = [];
    const guidance: string[] = [];
    const p = new CameraPipeline({
      cameraId: 'w',
      camera: new FakeCamera({ count: 20, intervalMs: null }),
      detector,
      liveness,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      decideFrom: 0.6,
      sink: {
        decision: (d) => {
          decisions.push(d);
        },
        guidance: (_camera, g) => {
          guidance.push(g);
        },
      },
    });
    await p.start();
    await p.done();
    await p.stop();
    assert.deepEqual([decisions.length, classified, p.counters.faces, p.counters.weakFaces], [0, 0, 0, 20]);
    assert.deepEqual(guidance, ['face_detected']);
  });
});

describe('camera pipeline loop: detect-ahead', () => {
  /** A pipeline over `count` pulled fake frames, logging detector calls and finished frames. */
  function logged(count: number, failAtDetect: number | null = null, stopAfter: number | null = null) {
    const worker = new SerialWorker();
    const events: string[] = [];
    const mats: Mat[] = [];
    let detects = 0;
    const m = models(worker, 'a', 1, { n: 0 });
    m.detector.detect = async (image: Mat) => {
      const k = ++detects;
      mats.push(image);
      events.push(`detect ${k}`);
      await worker.run('a', 3);
      if (k === failAtDetect) throw new Error('detector exploded');
      return [face(0)];
    };
    const states: CameraState[] = [];
    let stopped: Promise<void> | null = null;
    const p: CameraPipeline = new CameraPipeline({
      cameraId: 'a',
      camera: new FakeCamera({ count, intervalMs: null, width: 64, height: 48 }),
      ...m,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      sink: { decision: () => {} },
      onFrame: (r) => {
        events.push(`done ${r.frame.seq}`);
        if (r.frame.seq === stopAfter) stopped = p.stop();
      },
      onState: (st) => {
        states.push(st);
      },
    });
    return { p, events, mats, states, stopped: () => stopped };
  }

  it('detects the next frame while the current one is finished, and finishes frames in order', async () => {
    const { p, events, mats } = logged(6);
    await p.start();
    await p.done();
    await p.stop();
    const done = events.filter((e) => e.startsWith('done')).map((e) => Number(e.split(' ')[1]));
    assert.deepEqual(done, [1, 2, 3, 4, 5, 6]);
    for (let n = 1; n < 6; n++) {
      assert.ok(
        events.indexOf(`detect ${n + 1}`) < events.indexOf(`done ${n}`),
        `frame ${n + 1} was detected only after frame ${n} was finished: ${events.join(', ')}`,
      );
    }
    assert.equal(p.counters.processed, 6);
    assert.ok(
      mats.every((mat) => mat.empty),
      'every frame was released',
    );
  });

  it('stopping mid-stream frees the frames detected ahead', async () => {
    const { p, events, mats, stopped } = logged(1000, null, 3);
    await p.start();
    await p.done();
    await stopped();
    assert.equal(p.counters.processed, 3);
    for (let k = 4; k <= 3 + DETECT_AHEAD; k++)
      assert.ok(events.includes(`detect ${k}`), `frame ${k} was being detected when frame 3 finished`);
    assert.equal(mats.length, 3 + DETECT_AHEAD, 'no frame beyond the detect-ahead window was taken');
    assert.equal(p.cameraState, 'stopped');
    assert.ok(
      mats.every((mat) => mat.empty),
      'every frame was released',
    );
  });

  it('a detector failure on the frame detected ahead fails the camera after the current frame, freeing both', async () => {
    const { p, events, mats, states } = logged(10, 3);
    await p.start();
    await p.done();
    await p.stop();
    assert.equal(p.cameraState, 'failed');
    assert.deepEqual(states.at(-1), 'failed');
    assert.ok(events.includes('done 2'), 'the frame before the failure was finished');
    assert.equal(events.includes('done 3'), false);
    assert.ok(
      mats.every((mat) => mat.empty),
      'every frame was released',
    );
  });
});

describe('camera pipeline: one decision per presence across a camera outage', () => {
  it('a person held before the camera was lost is decided anew when it is back', async () => {
    const detectCalls = { n: 0 };
    const m = models(new SerialWorker(), 'p', 1, detectCalls);
    const decisions: string[] = [];
    const p = new CameraPipeline({
      cameraId: 'o',
      camera: new FakeCamera({ intervalMs: 20 }),
      ...m,
      config,
      log: silentLogger(),
      stages: { record: () => {} },
      sink: {
        decision: (d) => {
          decisions.push(d.decision);
        },
      },
    });
    await p.start();
    try {
      await until(() => decisions.length === 1, 20_000, 'the first decision');
      const framesAfterFirst = detectCalls.n;
      await until(() => detectCalls.n >= framesAfterFirst + 30, 20_000, '30 more frames');
      assert.deepEqual(decisions, ['accept'], 'held: one decision per presence');
      const error = new Error('unplugged');
      await p.sourceChanged({ type: 'lost', cameraId: 'o', reason: 'failed', error, attempt: 1 });
      await p.sourceChanged({ type: 'restored', cameraId: 'o', downMs: 10, attempts: 1, openToFrameMs: 1 });
      await until(() => decisions.length === 2, 20_000, 'a decision after the outage');
      assert.deepEqual(decisions, ['accept', 'accept']);
    } finally {
      await p.stop();
    }
  });
});
