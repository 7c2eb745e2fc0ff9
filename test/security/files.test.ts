/**
 * Issue 24, findings 3, 4 and 8: files named by a configuration, a command line or a manifest
 * were read with no type or size check. `/dev/zero` as `status.token_file`,
 * `mqtt.password_file`, `mqtt.tls.ca_file` or `detector.model` grew the process past 1.5 GB in
 * seconds; a FIFO hung `run` and `config check`; a small PNG declaring 30000x30000 pixels was
 * decoded; `drill --labels` and `model install` read `/dev/zero` and FIFOs without limit. One
 * rule now (core/file-rule.ts): a regular file of a bounded size, checked before reading. Each
 * attack here passes because it is refused, and within the spawn timeout (a hang fails it).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { checkFile, fileProblem, readCheckedFile, readCheckedFileAsync } from '../../core/file-rule.js';
import { readLabels } from '../../daemon/drill/runner.js';
import { loadManifest } from '../../daemon/liveness/manifest.js';
import { stageModel } from '../../daemon/models/model-install.js';
import { readImageHeader } from '../../drivers/camera/image-header.js';
import { readImageBgr } from '../../drivers/camera/still-image.js';
import { KIOSK_BIN, MINIFASNET_MANIFEST, MODEL_DATA, writeKioskConfig } from '../helpers/kiosk-child.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';

/** The manifest shipped in the repository: these refusals need no model file, so no ../shared. */
const SHIPPED_MANIFEST = path.join(repoRoot, 'models/minifasnet/MiniFASNetV2.manifest.json');

const dir = () => mkdtempSync(path.join(tmpdir(), 'fghv-files-'));

function fifo(): string {
  const p = path.join(dir(), 'fifo');
  execFileSync('mkfifo', [p]);
  return p;
}

/** The CLI as a user runs it; a hang is killed at 60 s and fails the test (status null). */
function cli(args: string[]) {
  const r = spawnSync(process.execPath, [KIOSK_BIN, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

const rule = { what: 'test file', maxBytes: 1000, code: ErrorCodes.CONFIG_INVALID };

describe('finding 3: one file rule', () => {
  test('regular files within the limit are read; /dev/zero, a FIFO, a directory and a larger file are refused unread', async () => {
    const ok = path.join(dir(), 'ok');
    writeFileSync(ok, 'x'.repeat(1000));
    assert.equal(readCheckedFile(ok, rule).length, 1000);
    assert.equal((await readCheckedFileAsync(ok, rule)).length, 1000);
    const big = path.join(dir(), 'big');
    writeFileSync(big, 'x'.repeat(1001));
    for (const [file, why] of [
      ['/dev/zero', /character device, not a regular file/],
      [fifo(), /FIFO, not a regular file/],
      [dir(), /directory, not a regular file/],
      [big, /1001 bytes, more than the 1000 allowed/],
      ['/nonexistent/file', /cannot be read/],
    ] as const) {
      const refused = (e: unknown) =>
        isKioskError(e, ErrorCodes.CONFIG_INVALID) && why.test((e as Error).message);
      assert.throws(() => readCheckedFile(file, rule), refused, file);
      await assert.rejects(readCheckedFileAsync(file, rule), refused, file);
      assert.throws(() => checkFile(file, rule), refused, file);
      assert.notEqual(fileProblem(file, rule), null);
    }
    // Cameras may name a character device; nothing else may.
    assert.doesNotThrow(() => checkFile('/dev/null', { ...rule, allowCharDevice: true }));
    assert.throws(() => readCheckedFile('/dev/null', { ...rule, allowCharDevice: true }));
  });

  test('config check: /dev/zero and a FIFO as each config-named file are reported, within the spawn timeout', () => {
    const pipe = fifo();
    for (const special of ['/dev/zero', pipe]) {
      const { file } = writeKioskConfig({
        extra: {
          detector: { name: 'yunet', model: special },
          mqtt: { url: 'mqtts://127.0.0.1:8883', password_file: special, tls: { ca_file: special } },
          status: { enabled: true, token_file: special },
        },
      });
      const r = cli(['config', 'check', file]);
      assert.equal(r.signal, null, `config check hung on ${special}`);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /KIOSK_E_CONFIG_INVALID/);
      for (const key of ['detector.model', 'mqtt.password_file', 'mqtt.tls.ca_file', 'status.token_file']) {
        assert.match(r.out, new RegExp(`${key.replace(/\./g, '\\.')}: ${special} is a`), `${key}\n${r.out}`);
      }
    }
    // Only the token file wrong: still refused (it is read as at start).
    const { file } = writeKioskConfig({ extra: { status: { enabled: true, token_file: '/dev/zero' } } });
    const r = cli(['config', 'check', file]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /status\.token_file: \/dev\/zero is a character device/);
  });

  test('run: /dev/zero or a FIFO as status.token_file exits non-zero, within the spawn timeout', {
    skip: needsSharedData(MODEL_DATA),
  }, () => {
    for (const special of ['/dev/zero', fifo()]) {
      const { file } = writeKioskConfig({ extra: { status: { enabled: true, token_file: special } } });
      const r = cli(['run', '--config', file]);
      assert.equal(r.signal, null, `run hung on ${special}`);
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /KIOSK_E_/);
    }
  });

  test('a manifest or model that is /dev/zero or a FIFO is refused by loadManifest', async () => {
    await assert.rejects(loadManifest('/dev/zero'), (e) => isKioskError(e, ErrorCodes.MANIFEST_INVALID));
    await assert.rejects(loadManifest(fifo()), (e) => isKioskError(e, ErrorCodes.MANIFEST_INVALID));
    const d = dir();
    const m = path.join(d, 'm.json');
    const manifest = YAML.parse((await import('node:fs')).readFileSync(SHIPPED_MANIFEST, 'utf8')) as Record<
      string,
      unknown
    >;
    writeFileSync(m, JSON.stringify({ ...manifest, file: '/dev/zero' }));
    await assert.rejects(loadManifest(m), (e) => isKioskError(e, ErrorCodes.MODEL_CORRUPT));
  });
});

/** A PNG header (signature and IHDR) declaring width x height, then nothing decodable. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16); // bit depth
  ihdr.writeUInt8(2, 17); // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    ihdr,
    Buffer.alloc(875_000),
  ]);
}

describe('finding 4: images are checked before decoding', () => {
  test('the declared size is read from PNG and JPEG headers', async () => {
    const { cv } = await import('../../core/cv.js');
    const mat = new cv.Mat(48, 64, cv.CV_8UC3).setTo(new cv.Vec3(10, 20, 30));
    assert.deepEqual(readImageHeader(cv.imencode('.png', mat)), { format: 'png', width: 64, height: 48 });
    assert.deepEqual(readImageHeader(cv.imencode('.jpg', mat)), { format: 'jpeg', width: 64, height: 48 });
    assert.equal(readImageHeader(Buffer.from('BM not supported')), null);
  });

  test('a PNG declaring 30000x30000, /dev/zero, a FIFO and a BMP are refused before decoding', async () => {
    const huge = path.join(dir(), 'huge.png');
    writeFileSync(huge, pngHeader(30_000, 30_000));
    const bmp = path.join(dir(), 'x.bmp');
    const { cv } = await import('../../core/cv.js');
    cv.imwrite(bmp, new cv.Mat(8, 8, cv.CV_8UC3));
    for (const [file, why] of [
      [huge, /declares 30000x30000 pixels/],
      ['/dev/zero', /character device/],
      [fifo(), /FIFO/],
      [bmp, /not a PNG or JPEG/],
    ] as const) {
      await assert.rejects(
        readImageBgr(file),
        (e) => isKioskError(e, ErrorCodes.IMAGE_UNREADABLE) && why.test((e as Error).message),
        file,
      );
    }
    // Just within the limits: decoded (the header says 4000x3000; the data is a real PNG).
    const ok = path.join(dir(), 'ok.png');
    cv.imwrite(ok, new cv.Mat(3000, 4000, cv.CV_8UC1).setTo(7));
    assert.equal((await readImageBgr(ok)).cols, 4000);
  });

  test('classify names the refusal and goes on within the spawn timeout', () => {
    const huge = path.join(dir(), 'huge.png');
    writeFileSync(huge, pngHeader(30_000, 30_000));
    const r = cli(['classify', '--model', MINIFASNET_MANIFEST, huge, '/dev/zero']);
    assert.equal(r.signal, null, r.out);
    assert.notEqual(r.code, 0, r.out);
  });
});

describe('finding 8: drill --labels and model install', () => {
  test('labels: /dev/zero and a FIFO are refused (KIOSK_E_DRILL_INVALID)', () => {
    for (const f of ['/dev/zero', fifo()]) {
      assert.throws(
        () => readLabels(f),
        (e) => isKioskError(e, ErrorCodes.DRILL_INVALID) && /not a regular file/.test((e as Error).message),
      );
    }
  });

  test('model install: /dev/zero as model or manifest, and a model over max_model_mb, are refused', async () => {
    const d = dir();
    const stateDir = path.join(d, 'state');
    await assert.rejects(
      stageModel({ stateDir, modelFile: '/dev/zero', manifestFile: SHIPPED_MANIFEST }),
      (e) => isKioskError(e, ErrorCodes.MODEL_CORRUPT),
    );
    await assert.rejects(stageModel({ stateDir, modelFile: '/dev/zero', manifestFile: '/dev/zero' }), (e) =>
      isKioskError(e, ErrorCodes.MANIFEST_INVALID),
    );
    await assert.rejects(stageModel({ stateDir, modelFile: fifo(), manifestFile: SHIPPED_MANIFEST }), (e) =>
      isKioskError(e, ErrorCodes.MODEL_CORRUPT),
    );
    const big = path.join(d, 'big.onnx');
    writeFileSync(big, Buffer.alloc(2048));
    await assert.rejects(
      stageModel({ stateDir, modelFile: big, manifestFile: SHIPPED_MANIFEST, maxModelBytes: 1024 }),
      (e) =>
        isKioskError(e, ErrorCodes.MODEL_CORRUPT) &&
        /2048 bytes, more than the 1024/.test((e as Error).message),
    );
    // Through the CLI, max_model_mb applies to `model install`.
    const { file } = writeKioskConfig({ extra: { model_update: { max_model_mb: 0.001 } } });
    const r = cli(['model', 'install', big, SHIPPED_MANIFEST, '--config', file]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /KIOSK_E_MODEL_CORRUPT.*2048 bytes, more than the 1049 allowed/s);
  });
});
