/** The `fghv-kiosk` command as a user types it: exit codes, error codes, classify on real photos. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TEST_MODELS_DIR, testModel } from '../helpers/models.js';
import { needsSharedData, repoRoot, shared } from '../helpers/paths.js';

const bin = path.join(repoRoot, 'bin/fghv-kiosk.js');
// MiniFASNetV2 and YuNet installed from ../shared/data/models by `model fetch`; configs name them.
await testModel('minifasnet-v2');
await testModel('yunet-s');
const MODELS_YAML = `models:\n  dir: ${JSON.stringify(TEST_MODELS_DIR)}\n`;

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
    assert.equal(cli(['config', 'check', 'config/examples/usb-camera.yaml', '--schema-only']).code, 0);
    // Without --schema-only, files of the target machine that this one lacks are listed.
    const here = cli(['config', 'check', 'config/examples/usb-camera.yaml']);
    assert.equal(here.code, 1);
    assert.match(here.stderr, /mqtt\.password_file: \/etc\/fghv-kiosk\/mqtt-password/);
    // Its models are named: a machine without them is told the command that installs them.
    assert.match(
      here.stderr,
      /liveness\.manifest: .*minifasnet-v2\/manifest\.json \(not installed: run `fghv-kiosk model fetch minifasnet-v2 --config /,
    );
    const garbage = cli(['config', 'check', tmp('g.yaml', 'mqtt: [\n')]);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /KIOSK_E_CONFIG_PARSE/);
  });

  it('--help on every subcommand prints its usage and exits 0; usage errors exit 2', () => {
    for (const args of [
      ['run', '--help'],
      ['doctor', '--help'],
      ['classify', '--help'],
      ['model', '--help'],
      ['verify', '--help'],
      ['config', 'check', '--help'],
      ['cameras', '-h'],
      ['drill', '--help'],
      ['drill', 'report', '--help'],
      ['drill', 'apply', '--help'],
      ['model', 'fetch', '--help'],
    ]) {
      const r = cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`fghv-kiosk ${args[0]}`), args.join(' '));
      if (args[1] === 'report' || args[1] === 'apply' || args[1] === 'fetch')
        assert.equal(r.stdout.match(/ {2}fghv-kiosk /g)?.length, 1, `${args.join(' ')}: its own block only`);
      assert.doesNotMatch(r.stdout, /fghv-kiosk version/, `${args.join(' ')} prints only its own usage`);
    }
    const bad = cli(['classify', '--model', 'models/fghv-demo/manifest.json', '--detector', 'nope', 'x.jpg']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /KIOSK_E_USAGE.*valid names: blazeface, yunet/);
  });

  it('config check reports a detector model, password or key file that does not exist', () => {
    const file = tmp(
      'missing.yaml',
      [
        'detector:',
        '  name: yunet',
        '  model: /nonexistent/yunet.onnx',
        'mqtt:',
        '  password_file: ./no-such-password',
        'model_update:',
        '  public_key_file: /nonexistent/model.pub',
        '',
      ].join('\n'),
    );
    const r = cli(['config', 'check', file]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /KIOSK_E_CONFIG_INVALID/);
    assert.match(r.stderr, /detector\.model: \/nonexistent\/yunet\.onnx/);
    assert.match(r.stderr, new RegExp(`mqtt\\.password_file: ${path.dirname(file)}/no-such-password`));
    assert.match(r.stderr, /model_update\.public_key_file: \/nonexistent\/model\.pub/);
  });

  it('classify applies the quality gates by default, names scores as decisions do', {
    skip: needsSharedData('models/MiniFASNetV2.onnx', 'models/yunet_s_640_640.onnx', 'images/T1.jpg'),
  }, () => {
    // T1's face is 172 px: with quality.min_face_px 200 the daemon would say retry/face_size.
    const cfg = tmp('gates.yaml', `quality:\n  min_face_px: 200\n${MODELS_YAML}`);
    const small = shared('images/T1.jpg');
    const args = ['classify', '--model', 'minifasnet-v2', '--detector', 'yunet', '--config', cfg];
    const gated = cli([...args, '--json', small]);
    assert.equal(gated.code, 0, gated.stderr);
    const face = JSON.parse(gated.stdout.trim()).faces[0];
    assert.ok(face, gated.stdout);
    assert.ok(face.quality.face_px < 200, JSON.stringify(face.quality));
    assert.equal(face.quality_gate, 'face_size');
    assert.equal(face.verdict, null);
    assert.deepEqual(face.scores, {});
    const text = cli([...args, small]);
    assert.match(text.stdout, /retry\/face_size/);
    const skipped = JSON.parse(cli([...args, '--skip-quality', '--json', small]).stdout.trim()).faces[0];
    assert.equal(skipped.quality_gate, null);
    assert.notEqual(skipped.verdict, null);
    // A softmax model gives p_real only: no var or delta_kl (FGHV's) in JSON or text.
    assert.deepEqual(Object.keys(skipped.scores), ['p_real']);
    assert.equal(typeof skipped.scores.p_real, 'number');
    const skippedText = cli([...args, '--skip-quality', small]).stdout;
    assert.match(skippedText, /p_real=/);
    assert.doesNotMatch(skippedText, /var=|delta_kl=/);
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
      '--config',
      tmp('models.yaml', MODELS_YAML),
      '--model',
      'minifasnet-v2',
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
