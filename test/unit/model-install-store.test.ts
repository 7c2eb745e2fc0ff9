/**
 * Model installation without inference (daemon/models/model-install.ts): verification before
 * anything is copied (manifest, file, sha256, signature over model and manifest), the staged
 * layout, current/previous bookkeeping, clean-up of older installs and of failed stages, with
 * stub models built here (test/helpers/stub-model.ts). Needs no shared data.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isKioskError } from '../../core/errors.js';
import {
  activeManifest,
  commitInstalled,
  discardStaged,
  modelPublicKey,
  modelSignedBytes,
  modelsDir,
  readInstalled,
  selfTestInputs,
  stageModel,
} from '../../daemon/models/model-install.js';
import { writeStubModel } from '../helpers/stub-model.js';
import { tempDir } from '../helpers/temp.js';

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'staged';
  } catch (e) {
    return isKioskError(e) ? `${e.code}: ${e.message}` : `not a KioskError: ${String(e)}`;
  }
};
const cause = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return isKioskError(e) && e.cause instanceof Error ? e.cause.constructor.name : 'no cause';
  }
};
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('model install: verify, stage, commit', () => {
  test('what is refused before anything is copied, each with its code', async () => {
    const dir = tempDir('stage');
    const stateDir = path.join(dir, 'state');
    const m = writeStubModel(dir, 'm', [0.3, 0.7]);
    const notJson = path.join(dir, 'bad.json');
    writeFileSync(notJson, '{');
    assert.equal(
      await failure(stageModel({ stateDir, modelFile: m.file, manifestFile: notJson })),
      `KIOSK_E_MANIFEST_INVALID: model manifest ${notJson} cannot be read as JSON`,
    );
    assert.equal(
      await cause(stageModel({ stateDir, modelFile: m.file, manifestFile: notJson })),
      'SyntaxError',
    );
    const ensemble = path.join(dir, 'ensemble.json');
    writeFileSync(
      ensemble,
      JSON.stringify({
        schema: 1,
        name: 'e',
        version: '1',
        family: 'ensemble',
        purpose: 'demo',
        members: ['a.json', 'b.json'],
        combine: 'mean',
        thresholds: { live_min: 0.8, spoof_max: 0.5 },
      }),
    );
    assert.equal(
      await failure(stageModel({ stateDir, modelFile: m.file, manifestFile: ensemble })),
      'KIOSK_E_MANIFEST_INVALID: model install takes one model file and its manifest, not an ensemble',
    );
    const missing = path.join(dir, 'missing.onnx');
    // The file rule (core/file-rule.ts) names the system's reason after the path.
    assert.equal(
      await failure(stageModel({ stateDir, modelFile: missing, manifestFile: m.manifest })),
      `KIOSK_E_MODEL_NOT_FOUND: model file ${missing} cannot be read: ENOENT: no such file or directory, open '${missing}'`,
    );
    assert.equal(
      await cause(stageModel({ stateDir, modelFile: missing, manifestFile: m.manifest })),
      'Error',
    );
    const other = writeStubModel(dir, 'other', [0.1, 0.9]);
    const mismatch = await stageModel({ stateDir, modelFile: other.file, manifestFile: m.manifest }).catch(
      (e) => e,
    );
    assert.ok(isKioskError(mismatch, 'KIOSK_E_MODEL_SHA_MISMATCH'));
    assert.deepEqual(mismatch.details, { actual: other.sha256, expected: m.sha256 });
    assert.match(mismatch.message, new RegExp(`has sha256 ${other.sha256}, its manifest says ${m.sha256}`));
    assert.equal(existsSync(modelsDir(stateDir)), false, 'nothing copied');
  });

  test('with a model key: a signature over model and manifest is required, exact, and tolerant of surrounding space only', async () => {
    const dir = tempDir('stage');
    const stateDir = path.join(dir, 'state');
    const m = writeStubModel(dir, 'm', [0.3, 0.7]);
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const manifestBytes = readFileSync(m.manifest);
    assert.equal(
      modelSignedBytes(m.sha256, manifestBytes).toString(),
      `fghv-model-v2\n${m.sha256}\n${sha(manifestBytes)}\n`,
    );
    const good = sign(null, modelSignedBytes(m.sha256, manifestBytes), privateKey).toString('base64');
    assert.equal(good.length, 88);
    const stage = (signature: string | null) =>
      stageModel({ stateDir, modelFile: m.file, manifestFile: m.manifest, publicKey, signature });
    assert.equal(
      await failure(stage(null)),
      'KIOSK_E_MODEL_SIGNATURE_INVALID: a signature is required (model_update.public_key_file is set)',
    );
    const refused =
      'KIOSK_E_MODEL_SIGNATURE_INVALID: the model signature does not verify over this model and manifest with model_update.public_key_file';
    const other = sign(null, Buffer.from('something else'), privateKey).toString('base64');
    for (const bad of [
      other,
      `x${good}`,
      `${good}x`,
      good.slice(0, 86),
      `${good.slice(0, 86)}=`,
      `${'#'.repeat(86)}==`,
    ])
      assert.equal(await failure(stage(bad)), refused, bad);
    const staged = await stage(`  ${good}\n`);
    assert.equal(staged.sha256, m.sha256);
    assert.equal(
      await failure(stageModel({ stateDir, modelFile: m.file, manifestFile: m.manifest, publicKey: null })),
      'staged',
      'no key: no signature needed',
    );
    assert.equal(
      await failure(Promise.resolve().then(() => modelPublicKey('not a key'))),
      'KIOSK_E_MODEL_SIGNATURE_INVALID: model_update.public_key_file: not an Ed25519 public key',
    );
  });

  test('staged layout: models/<sha256[:16]>/model<ext> and its manifest; staging again changes nothing', async () => {
    const dir = tempDir('stage');
    const stateDir = path.join(dir, 'state');
    const m = writeStubModel(dir, 'm', [0.3, 0.7]);
    const staged = await stageModel({ stateDir, modelFile: m.file, manifestFile: m.manifest });
    assert.equal(staged.dir, path.join(modelsDir(stateDir), m.sha256.slice(0, 16)));
    assert.equal(modelsDir(stateDir), path.join(stateDir, 'models'));
    assert.equal(staged.created, true);
    assert.deepEqual(readdirSync(staged.dir).sort(), ['manifest.json', 'model.onnx']);
    assert.equal(sha(readFileSync(path.join(staged.dir, 'model.onnx'))), m.sha256);
    const manifest = JSON.parse(readFileSync(staged.manifestPath, 'utf8'));
    assert.equal(manifest.file, 'model.onnx');
    assert.equal(manifest.name, 'm');
    assert.equal(staged.name, 'm');
    assert.equal(staged.version, '0.0.1');
    writeFileSync(path.join(staged.dir, 'marker'), 'x');
    const again = await stageModel({ stateDir, modelFile: m.file, manifestFile: m.manifest });
    assert.equal(again.created, false);
    assert.ok(existsSync(path.join(staged.dir, 'marker')), 'the existing directory is kept as it is');
    // A model file named without an extension is installed as model.onnx; another keeps its own.
    for (const [file, want] of [
      ['noext', 'model.onnx'],
      ['weights.ort', 'model.ort'],
    ]) {
      const d = tempDir('stage');
      const s = writeStubModel(d, 'x', [0.2, 0.8]);
      const renamed = path.join(d, file as string);
      writeFileSync(renamed, readFileSync(s.file));
      const man = JSON.parse(readFileSync(s.manifest, 'utf8'));
      writeFileSync(s.manifest, JSON.stringify({ ...man, file }));
      const st = await stageModel({
        stateDir: path.join(d, 'state'),
        modelFile: renamed,
        manifestFile: s.manifest,
      });
      assert.ok(existsSync(path.join(st.dir, want as string)), `${file} -> ${want}`);
    }
  });

  test('commit: current and previous, older installs removed, failed stages discarded, current kept', async () => {
    const dir = tempDir('commit');
    const stateDir = path.join(dir, 'state');
    const stage = async (name: string, p: number) => {
      const m = writeStubModel(dir, name, [1 - p, p]);
      return stageModel({ stateDir, modelFile: m.file, manifestFile: m.manifest });
    };
    assert.deepEqual(readInstalled(stateDir), { current: null, previous: null });
    assert.equal(activeManifest(stateDir, '/configured.json'), '/configured.json');
    const a = await stage('a', 0.6);
    const t0 = new Date('2026-12-01T00:00:00Z');
    const first = commitInstalled(stateDir, a, t0);
    assert.equal(first.current?.sha256, a.sha256);
    assert.equal(first.current?.installed_at, t0.toISOString());
    assert.equal(first.previous, null);
    assert.deepEqual(readInstalled(stateDir), first);
    assert.equal(activeManifest(stateDir, '/configured.json'), a.manifestPath);
    // Other entries under models/ are left alone: only <16 hex> directories are installs.
    mkdirSync(path.join(modelsDir(stateDir), 'incoming'));
    mkdirSync(path.join(modelsDir(stateDir), 'x0123456789abcdef0'));
    writeFileSync(path.join(modelsDir(stateDir), '0123456789abcdef'), 'a file');
    const b = await stage('b', 0.7);
    const second = commitInstalled(stateDir, b);
    assert.equal(second.current?.sha256, b.sha256);
    assert.equal(second.previous?.sha256, a.sha256);
    // The same model again: previous stays what it was.
    const same = commitInstalled(stateDir, b);
    assert.equal(same.previous?.sha256, a.sha256);
    const c = await stage('c', 0.8);
    const third = commitInstalled(stateDir, c);
    assert.equal(third.previous?.sha256, b.sha256);
    assert.deepEqual(
      readdirSync(modelsDir(stateDir)).sort(),
      [
        '0123456789abcdef',
        b.sha256.slice(0, 16),
        c.sha256.slice(0, 16),
        'incoming',
        'installed.json',
        'x0123456789abcdef0',
      ].sort(),
      'a (two installs ago) removed',
    );
    // A failed stage is removed, unless it is the current or previous model or was already there.
    const d = await stage('d', 0.9);
    discardStaged(stateDir, d);
    assert.equal(existsSync(d.dir), false);
    discardStaged(stateDir, { ...c, created: true });
    assert.ok(existsSync(c.dir), 'current kept');
    discardStaged(stateDir, { ...b, created: true });
    assert.ok(existsSync(b.dir), 'previous kept');
    const e = await stage('e', 0.95);
    discardStaged(stateDir, { ...e, created: false });
    assert.ok(existsSync(e.dir), 'not created by this stage: kept');
    // The current manifest gone: the configured one is used.
    rmSync(c.dir, { recursive: true });
    assert.equal(activeManifest(stateDir, '/configured.json'), '/configured.json');
    writeFileSync(path.join(modelsDir(stateDir), 'installed.json'), '{"current":');
    const corrupt = await failure(Promise.resolve().then(() => readInstalled(stateDir)));
    assert.match(corrupt, /^KIOSK_E_STATE_CORRUPT: .*installed\.json is not valid JSON$/);
    assert.equal(await cause(Promise.resolve().then(() => readInstalled(stateDir))), 'SyntaxError');
    writeFileSync(path.join(modelsDir(stateDir), 'installed.json'), '{}');
    assert.deepEqual(readInstalled(stateDir), { current: null, previous: null });
  });

  test('self-test inputs: three 256x256 frames, one face box with five landmarks inside it', () => {
    const inputs = selfTestInputs();
    assert.equal(inputs.length, 3);
    for (const { image, face } of inputs) {
      assert.deepEqual([image.cols, image.rows, image.channels], [256, 256, 3]);
      assert.equal(face.landmarks.length, 5);
      const [x, y, w, h] = face.box;
      for (const [lx, ly] of face.landmarks) assert.ok(lx > x && lx < x + w && ly > y && ly < y + h);
    }
    // Flat grey, a horizontal gradient (each channel = the column), and fixed-seed noise.
    const data = inputs.map((i) => i.image.getData() as Buffer);
    assert.equal(data[0]?.length, 256 * 256 * 3);
    assert.ok(data[0]?.every((v) => v === 128));
    for (const [row, col] of [
      [0, 0],
      [10, 37],
      [255, 255],
    ] as const) {
      const at = (row * 256 + col) * 3;
      assert.deepEqual(
        [...(data[1]?.subarray(at, at + 3) ?? [])],
        [col, col, col],
        `gradient at ${row},${col}`,
      );
    }
    let seed = 12345;
    const noise = Array.from({ length: 6 }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    });
    assert.deepEqual([...(data[2]?.subarray(0, 6) ?? [])], noise);
    assert.ok(new Set(data[2]).size > 200, 'noise covers the byte range');
  });
});
