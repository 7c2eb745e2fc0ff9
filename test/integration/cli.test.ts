/** The `fghv-kiosk` command as a user types it: exit codes, error codes, classify on real photos. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { needsSharedData, repoRoot, shared } from '../helpers/paths.js';

const bin = path.join(repoRoot, 'bin/fghv-kiosk.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(name: string, content: string | Buffer): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'fghv-cli-')), name);
  writeFileSync(file, content);
  return file;
}

describe('fghv-kiosk CLI', () => {
  it('help exits 0, an unknown command exits 2 with a usage code', () => {
    const help = cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /fghv-kiosk run/);
    assert.match(help.stdout, /classify --model MANIFEST/);
    const bad = cli(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /KIOSK_E_USAGE/);
  });

  it('config check lists every error with its path and exits 1; a valid file exits 0', () => {
    const bad = cli(['config', 'check', 'config/examples/invalid.yaml']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /KIOSK_E_CONFIG_INVALID/);
    for (const p of [
      'mqtt',
      'mqtt.decision_expiry_s',
      'cameras[0].id',
      'cameras[0].kind',
      'decision.frames',
    ]) {
      assert.ok(bad.stderr.includes(p), `${p} missing from:\n${bad.stderr}`);
    }
    assert.equal(cli(['config', 'check', 'config/examples/usb-camera.yaml']).code, 0);
    const garbage = cli(['config', 'check', tmp('g.yaml', 'mqtt: [\n')]);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /KIOSK_E_CONFIG_PARSE/);
  });

  it('config defaults prints a configuration that validates', () => {
    const r = cli(['config', 'defaults']);
    assert.equal(r.code, 0);
    assert.equal(cli(['config', 'check', tmp('d.yaml', r.stdout)]).code, 0);
  });

  it('classify: MiniFASNetV2 with YuNet calls T1 live, F1 and F2 spoof', {
    skip: needsSharedData('models/MiniFASNetV2.onnx', 'models/yunet_s_640_640.onnx', 'images/T1.jpg'),
  }, () => {
    const r = cli([
      'classify',
      '--model',
      'models/minifasnet/MiniFASNetV2.manifest.json',
      '--detector',
      'yunet',
      '--json',
      shared('images/T1.jpg'),
      shared('images/F1.jpg'),
      shared('images/F2.jpg'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.faces.map((f: { verdict: string }) => f.verdict)),
      [['live'], ['spoof'], ['spoof']],
    );
    for (const l of lines) {
      const [x, y, w, h] = l.faces[0].box;
      assert.ok(x >= 0 && y >= 0 && x + w <= l.width + 1 && y + h <= l.height + 1, 'box in original pixels');
      assert.equal(l.faces[0].landmarks.length, 5);
    }
    assert.match(r.stderr, /purpose: reference/);
  });

  it('classify: the demo FGHV model accepts neither attack and calls the unseen live photo uncertain', {
    skip: needsSharedData('images/T1.jpg', 'images/F1.jpg', 'images/F2.jpg'),
  }, () => {
    // models/fghv-demo/README.md: trained on two synthetic identities, the demo model has never
    // seen a real camera; it must fail closed (uncertain), never accept the print or the replay.
    const r = cli([
      'classify',
      '--model',
      'models/fghv-demo/manifest.json',
      '--json',
      shared('images/T1.jpg'),
      shared('images/F1.jpg'),
      shared('images/F2.jpg'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const verdicts = lines.map((l) => l.faces.map((f: { verdict: string }) => f.verdict));
    assert.deepEqual(verdicts, [['uncertain'], ['uncertain'], ['uncertain']]);
    for (const l of lines) {
      const s = l.faces[0].scores;
      assert.ok(s.var > 0 && Number.isFinite(s.delta_kl), JSON.stringify(s));
    }
    assert.match(r.stderr, /purpose: demo/);
  });

  it('classify reports unreadable images by code, goes on with the others, and exits 1', () => {
    const blank = spawnSync('/usr/bin/python3', [
      '-c',
      'import cv2,numpy as n,sys; cv2.imwrite(sys.argv[1], n.full((240,320,3),128,n.uint8))',
      path.join(tmpdir(), 'fghv-cli-blank.png'),
    ]);
    assert.equal(blank.status, 0);
    const r = cli([
      'classify',
      '--model',
      'models/fghv-demo/manifest.json',
      '--json',
      '/nonexistent/a.jpg',
      tmp('garbage.jpg', 'not an image'),
      path.join(tmpdir(), 'fghv-cli-blank.png'),
    ]);
    assert.equal(r.code, 1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.equal(lines[0].error.code, 'KIOSK_E_IMAGE_UNREADABLE');
    assert.equal(lines[1].error.code, 'KIOSK_E_IMAGE_UNREADABLE');
    assert.deepEqual(lines[2].faces, []);
    assert.match(r.stderr, /purpose: demo/);
  });

  it('run refuses to start on a model whose sha256 does not match, with the code, exit 1', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-cli-'));
    const m = JSON.parse(readFileSync(path.join(repoRoot, 'models/fghv-demo/manifest.json'), 'utf8'));
    m.file = path.join(repoRoot, 'models/fghv-demo', m.file);
    m.sha256 = 'f'.repeat(64);
    writeFileSync(path.join(dir, 'm.json'), JSON.stringify(m));
    const r = cli(['run'], {
      FGHV_LIVENESS__MANIFEST: path.join(dir, 'm.json'),
      FGHV_DEVICE__STATE_DIR: dir,
      FGHV_MQTT__EMBEDDED_PORT: '0',
      FGHV_STATUS__ENABLED: 'false',
      FGHV_LOG__FORMAT: 'json',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /KIOSK_E_MODEL_SHA_MISMATCH/);
  });

  it('run refuses an FGHV model exported without calibration, saying so, exit 1', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-cli-'));
    const m = JSON.parse(readFileSync(path.join(repoRoot, 'models/fghv-demo/manifest.json'), 'utf8'));
    m.file = path.join(repoRoot, 'models/fghv-demo', m.file);
    delete m.thresholds; // what python3 -m fghv export writes before calibrate
    writeFileSync(path.join(dir, 'm.json'), JSON.stringify(m));
    const r = cli(['run'], {
      FGHV_LIVENESS__MANIFEST: path.join(dir, 'm.json'),
      FGHV_DEVICE__STATE_DIR: dir,
      FGHV_MQTT__EMBEDDED_PORT: '0',
      FGHV_STATUS__ENABLED: 'false',
      FGHV_LOG__FORMAT: 'json',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /KIOSK_E_MANIFEST_INVALID/);
    assert.match(r.stderr, /not calibrated/);
  });

  it('run with a camera that does not exist stays up, says so, and stops cleanly', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-cli-'));
    const child = spawn(process.execPath, [bin, 'run'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        FGHV_CAMERAS: JSON.stringify([{ id: 'gone', kind: 'file', source: '/nonexistent/video.mp4' }]),
        FGHV_DEVICE__STATE_DIR: dir,
        FGHV_MQTT__EMBEDDED_PORT: '0',
        FGHV_STATUS__ENABLED: 'false',
        FGHV_LOG__FORMAT: 'json',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      const t0 = Date.now();
      while (!stderr.includes('"ready"') && !stderr.includes('"msg":"ready"')) {
        assert.equal(child.exitCode, null, `daemon exited: ${stderr}`);
        assert.ok(Date.now() - t0 < 60_000, `not ready within 60 s: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(stderr, /KIOSK_E_CAMERA_NOT_FOUND|camera gone cannot be opened|gone/);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
