/**
 * The detector table (daemon/detect/registry.ts): a detector family is one entry. A fake
 * detector added as an entry, and nothing else, is created by the real factory: its default
 * model is resolved, checked and loaded in the detector lane, and its class is built on the
 * session. The device's table holds exactly the names a config may use.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DETECTOR_NAMES } from '../../config/schema.js';
import {
  createDetector,
  DETECTORS,
  type DetectorTable,
  defaultDetectorModel,
  type FaceDetection,
} from '../../daemon/detect/index.js';
import { DETECTOR_LANE, type OrtSession } from '../../daemon/inference/inference-worker.js';
import { tempDir } from '../helpers/temp.js';

const FACE: FaceDetection = {
  box: [10, 20, 30, 40],
  landmarks: [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 5],
  ],
  score: 0.9,
};

const FAKE = {
  ...DETECTORS,
  fake: {
    create: (session: OrtSession, model: string) => ({
      name: 'fake',
      inputWidth: 8,
      inputHeight: 8,
      provider: session.provider,
      model,
      detect: async () => [FACE],
      close: () => session.release(),
    }),
    input: { kind: 'nchw-bgr' },
    defaultModel: (repoRoot: string) => path.join(repoRoot, 'fake-detector.onnx'),
    missingDefaultHint: ' (the fake has none)',
  },
} satisfies DetectorTable;

function fakeWorker() {
  const loaded: { model: string; lane: number | undefined }[] = [];
  let released = 0;
  const session: OrtSession = {
    provider: 'fake',
    tried: [],
    inputs: [],
    outputs: [],
    rewrites: 0,
    run: async () => ({ outputs: {}, ms: 0 }),
    release: async () => {
      released++;
    },
  };
  return {
    loaded,
    released: () => released,
    worker: {
      load: async (model: string, o: { lane?: number } = {}) => {
        loaded.push({ model, lane: o.lane });
        return session;
      },
    },
  };
}

const opts = (name: string, repoRoot: string) => ({
  name,
  model: null,
  scoreThreshold: 0.6,
  nmsIou: 0.3,
  maxFaces: 1,
  providers: ['cpu'],
  intraOpThreads: 1,
  repoRoot,
});

test('the device table holds exactly the detector names a config may use', () => {
  assert.deepEqual(Object.keys(DETECTORS).sort(), [...DETECTOR_NAMES].sort());
  const root = '/opt/kiosk';
  assert.equal(
    defaultDetectorModel('blazeface', root),
    '/opt/kiosk/models/blazeface/face_detection_back_256x256_barracuda.onnx',
  );
  assert.equal(DETECTORS.blazeface.input.kind, 'nhwc-rgb');
  assert.equal(DETECTORS.yunet.input.kind, 'nchw-bgr');
});

test('a fake detector added as one entry is created by the factory on its default model', async () => {
  const dir = tempDir('detector-registry');
  writeFileSync(path.join(dir, 'fake-detector.onnx'), Buffer.alloc(64));
  const w = fakeWorker();
  const d = await createDetector(w.worker, opts('fake', dir), FAKE);
  assert.equal(d.name, 'fake');
  assert.equal(d.provider, 'fake');
  assert.deepEqual(w.loaded, [{ model: path.join(dir, 'fake-detector.onnx'), lane: DETECTOR_LANE }]);
  assert.deepEqual(await d.detect(undefined as never), [FACE]);
  await d.close();
  assert.equal(w.released(), 1);
});

test('the entry decides: a missing default model gets its hint, and without the entry the name is unknown', async () => {
  const w = fakeWorker();
  await assert.rejects(
    createDetector(w.worker, opts('fake', path.join(tempDir('detector-registry'), 'none')), FAKE),
    (e: Error & { code?: string }) =>
      e.code === 'KIOSK_E_MODEL_NOT_FOUND' && e.message.endsWith('(the fake has none)'),
  );
  await assert.rejects(
    createDetector(w.worker, opts('fake', tempDir('detector-registry'))),
    (e: Error & { code?: string }) =>
      e.code === 'KIOSK_E_DETECTOR_UNKNOWN' && e.message.endsWith('valid names: blazeface, yunet'),
  );
  assert.deepEqual(w.loaded, []);
});
