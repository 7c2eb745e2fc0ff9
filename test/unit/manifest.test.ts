import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import { InferenceWorker } from '../../daemon/inference/inference-worker.js';
import { LivenessModel } from '../../daemon/liveness/liveness-model.js';
import { loadManifest, parseManifest, sha256Hex } from '../../daemon/liveness/manifest.js';
import { MINIFASNET_MANIFEST } from '../helpers/kiosk-child.js';
import { testModel } from '../helpers/models.js';
import { needsSharedData, repoRoot, shared } from '../helpers/paths.js';

const v2Manifest = MINIFASNET_MANIFEST;
const skip = needsSharedData('models/MiniFASNetV2.onnx', 'models/MiniFASNetV1SE.onnx');

/** A temp dir with a copy of the V2 manifest pointing at `modelBytes`. */
function withModel(modelBytes: Buffer, edit: (m: Record<string, unknown>) => void = () => {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-manifest-'));
  writeFileSync(path.join(dir, 'model.onnx'), modelBytes);
  // The shipped manifest as the template (file and sha256 are replaced): no installed model needed.
  const shipped = path.join(repoRoot, 'models/minifasnet/MiniFASNetV2.manifest.json');
  const m = JSON.parse(readFileSync(shipped, 'utf8')) as Record<string, unknown>;
  m.file = 'model.onnx';
  m.sha256 = sha256Hex(modelBytes);
  edit(m);
  const file = path.join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(m));
  return file;
}

describe('model manifests', () => {
  let worker: InferenceWorker;
  before(() => {
    worker = InferenceWorker.start();
  });
  after(async () => {
    await worker.close();
  });

  it('every manifest shipped under models/ is valid', () => {
    for (const f of [
      'models/minifasnet/MiniFASNetV2.manifest.json',
      'models/minifasnet/MiniFASNetV1SE.manifest.json',
      'models/minifasnet/ensemble.manifest.json',
      'models/fghv-demo/manifest.json',
    ]) {
      const raw = JSON.parse(readFileSync(path.join(repoRoot, f), 'utf8'));
      assert.doesNotThrow(() => parseManifest(raw, f), f);
    }
  });

  it('an FGHV manifest without calibrated thresholds is refused with a message that says so', () => {
    const demo = JSON.parse(readFileSync(path.join(repoRoot, 'models/fghv-demo/manifest.json'), 'utf8'));
    for (const edit of [
      (m: Record<string, unknown>) => {
        delete m.thresholds;
      },
      (m: Record<string, unknown>) => {
        m.thresholds = { p_real_min: 0.5, var_max: 0.01 };
      },
    ]) {
      const m = structuredClone(demo) as Record<string, unknown>;
      edit(m);
      assert.throws(
        () => parseManifest(m, 'fresh-export.json'),
        (e: unknown) =>
          isKioskError(e, 'KIOSK_E_MANIFEST_INVALID') &&
          e.details?.reason === 'uncalibrated' &&
          /not calibrated/.test(e.message) &&
          /delta_kl_max/.test(e.message) &&
          /fghv calibrate/.test(e.message),
      );
    }
  });

  it('lists every schema error by path', () => {
    assert.throws(
      () =>
        parseManifest({ schema: 1, family: 'softmax', name: '', purpose: 'maybe', sha256: 'xyz' }, 'm.json'),
      (e: unknown) => {
        assert.ok(isKioskError(e, 'KIOSK_E_MANIFEST_INVALID'));
        const issues = ((e.details?.issues ?? []) as string[]).join('\n');
        for (const p of ['name', 'purpose', 'sha256', 'file', 'input', 'crop', 'outputs', 'thresholds']) {
          assert.match(issues, new RegExp(`^${p}`, 'm'));
        }
        return true;
      },
    );
  });

  it('missing manifest, not-JSON manifest and missing model file have their own codes', async () => {
    await assert.rejects(loadManifest('/nonexistent/m.json'), (e: unknown) =>
      isKioskError(e, 'KIOSK_E_MANIFEST_NOT_FOUND'),
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-manifest-'));
    writeFileSync(path.join(dir, 'm.json'), '{ not json');
    await assert.rejects(loadManifest(path.join(dir, 'm.json')), (e: unknown) =>
      isKioskError(e, 'KIOSK_E_MANIFEST_INVALID'),
    );
    const m = withModel(Buffer.from('x'));
    const { rmSync } = await import('node:fs');
    rmSync(path.join(path.dirname(m), 'model.onnx'));
    await assert.rejects(loadManifest(m), (e: unknown) => isKioskError(e, 'KIOSK_E_MODEL_NOT_FOUND'));
  });

  it('a sha256 mismatch refuses to load and names both hashes', { skip }, async () => {
    const bytes = readFileSync(shared('models/MiniFASNetV2.onnx'));
    const file = withModel(bytes, (m) => {
      m.sha256 = '0'.repeat(64);
    });
    await assert.rejects(
      LivenessModel.load(worker, file, { providers: ['cpu'], intraOpThreads: 1 }),
      (e: unknown) => {
        assert.ok(isKioskError(e, 'KIOSK_E_MODEL_SHA_MISMATCH'));
        assert.match(e.message, /0{64}/);
        assert.match(e.message, new RegExp(sha256Hex(bytes)));
        return true;
      },
    );
  });

  it('a truncated or garbage model (with a matching sha) is reported corrupt', { skip }, async () => {
    const bytes = readFileSync(shared('models/MiniFASNetV2.onnx'));
    for (const broken of [
      bytes.subarray(0, bytes.length >> 1),
      Buffer.from('this is not an onnx file at all'),
      Buffer.alloc(0),
    ]) {
      const file = withModel(Buffer.from(broken));
      await assert.rejects(
        LivenessModel.load(worker, file, { providers: ['cpu'], intraOpThreads: 1 }),
        (e: unknown) => isKioskError(e, 'KIOSK_E_MODEL_CORRUPT'),
      );
    }
  });

  it('a model whose input shape differs from the manifest is refused', { skip }, async () => {
    const file = withModel(readFileSync(shared('models/MiniFASNetV2.onnx')), (m) => {
      (m.input as { shape: number[] }).shape = [1, 3, 112, 112];
      (m.crop as { size: number[] }).size = [112, 112];
    });
    await assert.rejects(
      LivenessModel.load(worker, file, { providers: ['cpu'], intraOpThreads: 1 }),
      (e: unknown) => isKioskError(e, 'KIOSK_E_MODEL_SHAPE_MISMATCH'),
    );
  });

  it('providers are tried in order; unavailable GPU providers fall back to cpu', { skip }, async () => {
    const model = await LivenessModel.load(worker, v2Manifest, {
      providers: ['tensorrt', 'cuda', 'cpu'],
      intraOpThreads: 1,
    });
    assert.equal(model.provider, 'cpu');
    await model.close();
    await assert.rejects(
      LivenessModel.load(worker, v2Manifest, { providers: ['cuda'], intraOpThreads: 1 }),
      (e: unknown) => isKioskError(e, 'KIOSK_E_PROVIDER_UNAVAILABLE'),
    );
  });

  it('site threshold overrides must name known thresholds', { skip }, async () => {
    await assert.rejects(
      LivenessModel.load(worker, v2Manifest, {
        providers: ['cpu'],
        intraOpThreads: 1,
        thresholds: { live_minn: 0.9 },
      }),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /live_minn/.test(e.message),
    );
    const m = await LivenessModel.load(worker, v2Manifest, {
      providers: ['cpu'],
      intraOpThreads: 1,
      thresholds: { live_min: 0.9 },
    });
    assert.equal(m.activeThresholds.live_min, 0.9);
    await m.close();
  });

  it('an ensemble loads its members', { skip }, async () => {
    const m = await LivenessModel.load(worker, await testModel('minifasnet-ensemble'), {
      providers: ['cpu'],
      intraOpThreads: 1,
    });
    assert.equal(m.info.family, 'ensemble');
    assert.match(m.info.sha256, /^[0-9a-f]{64}$/);
    await m.close();
  });
});
