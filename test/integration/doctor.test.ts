import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { judgeClock, judgeFreeSpace } from '../../daemon/cli/doctor.js';
import { uprightRotation } from '../../drivers/camera/orient.js';
import { MODEL_DATA, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import { freePort, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';

interface Report {
  ok: boolean;
  checks: { name: string; status: string; message: string; details?: Record<string, unknown> }[];
}

async function doctor(file: string): Promise<{ code: number | null; report: Report }> {
  const kiosk = spawnKiosk(['doctor', '--config', file, '--json']);
  const { code } = await kiosk.waitExit(120_000);
  const line = kiosk
    .output()
    .split('\n')
    .find((l) => l.startsWith('{"ok"'));
  assert.ok(line, kiosk.output());
  return { code, report: JSON.parse(line) as Report };
}

describe('doctor verdicts', () => {
  it('free space and clock thresholds', () => {
    assert.equal(judgeFreeSpace(50 * 1024 * 1024).status, 'fail');
    assert.equal(judgeFreeSpace(500 * 1024 * 1024).status, 'warn');
    assert.equal(judgeFreeSpace(5 * 1024 ** 3).status, 'ok');
    assert.equal(judgeClock(Date.UTC(1970, 0, 1)).status, 'fail');
    assert.equal(judgeClock(Date.UTC(2026, 5, 1)).status, 'ok');
  });

  it('uprightRotation reads where the head points from the landmarks', () => {
    // Eyes at y 100, mouth corners at y 160: upright.
    const up: [number, number][] = [
      [80, 100],
      [120, 100],
      [100, 130],
      [85, 160],
      [115, 160],
    ];
    const turn = (p: [number, number][], f: (x: number, y: number) => [number, number]) =>
      p.map(([x, y]) => f(x, y));
    assert.equal(uprightRotation(up), 0);
    // The image turned 90 degrees clockwise (x' = -y, y' = x): the head points right.
    assert.equal(uprightRotation(turn(up, (x, y) => [-y, x])), 270);
    assert.equal(uprightRotation(turn(up, (x, y) => [y, -x])), 90);
    assert.equal(uprightRotation(turn(up, (x, y) => [-x, -y])), 180);
  });
});

describe('fghv-kiosk doctor', { skip: needsSharedData(MODEL_DATA) }, () => {
  it('passes on a working setup and says what runs where', async () => {
    const { file } = writeKioskConfig();
    const { code, report } = await doctor(file);
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.ok, true);
    const by = new Map(report.checks.map((c) => [c.name, c]));
    for (const name of [
      'state_dir',
      'disk_space',
      'clock',
      'model',
      'execution_providers',
      'camera:front',
      'broker',
    ])
      assert.ok(by.has(name), `missing check ${name}`);
    assert.deepEqual(by.get('execution_providers')?.details?.available, ['cpu']);
    assert.match(by.get('model')?.message ?? '', /sha256 verified/);
  });

  it('fails with explanations: missing video, missing manifest, unreachable broker', async () => {
    const port = await freePort();
    const { file } = writeKioskConfig({
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      extra: {
        cameras: [{ id: 'front', kind: 'file', source: '/nonexistent/video.mp4' }],
        liveness: { manifest: '/nonexistent/manifest.json', providers: ['cpu'] },
      },
    });
    const { code, report } = await doctor(file);
    assert.equal(code, 1);
    assert.equal(report.ok, false);
    const fail = (name: string) => report.checks.find((c) => c.name === name && c.status === 'fail');
    assert.match(fail('camera:front')?.message ?? '', /does not exist/);
    assert.match(fail('model')?.message ?? '', /KIOSK_E_MANIFEST_NOT_FOUND/);
    assert.match(fail('broker')?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('checks each broker of a failover list', { skip: needsMosquitto() }, async (t) => {
    const up = await startMosquitto();
    t.after(() => up.stop());
    const down = await freePort();
    const { file } = writeKioskConfig({ extra: { mqtt: { url: [up.url, `mqtt://127.0.0.1:${down}`] } } });
    const { report } = await doctor(file);
    const by = new Map(report.checks.map((c) => [c.name, c]));
    assert.equal(by.get('broker')?.status, 'ok', JSON.stringify(by.get('broker')));
    assert.match(by.get('broker')?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${up.port}`));
    assert.equal(by.get('broker 2')?.status, 'fail');
    assert.match(by.get('broker 2')?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${down}`));
  });

  it('sees a camera mounted sideways and names the rotate that fixes it', async () => {
    // The sample video turned 90 degrees clockwise, as a camera on its side films it.
    const sideways = path.join(mkdtempSync(path.join(tmpdir(), 'fghv-doctor-')), 'sideways.mp4');
    const r = spawnSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-t',
      '10',
      '-i',
      path.join(repoRoot, 'media/demo-kiosk.mp4'),
      '-vf',
      'transpose=1',
      sideways,
    ]);
    assert.equal(r.status, 0, r.stderr?.toString());
    const check = async (rotate: number) => {
      const { file } = writeKioskConfig({
        extra: { cameras: [{ id: 'front', kind: 'file', source: sideways, rotate }] },
      });
      const { report } = await doctor(file);
      return report.checks.find((c) => c.name === 'orientation:front');
    };
    const wrong = await check(0);
    assert.equal(wrong?.status, 'warn', JSON.stringify(wrong));
    assert.match(wrong?.message ?? '', /rotate: 270/);
    const right = await check(270);
    assert.equal(right?.status, 'ok', JSON.stringify(right));
    assert.match(right?.message ?? '', /faces upright/);
  });

  it('fails on a detector model or password file that does not exist, and creates nothing', async () => {
    const { file, stateDir } = writeKioskConfig({
      extra: {
        detector: { name: 'yunet', model: '/nonexistent/yunet.onnx' },
        mqtt: { url: null, embedded_port: 0, password_file: '/nonexistent/mqtt-password' },
      },
    });
    const { code, report } = await doctor(file);
    assert.equal(code, 1, JSON.stringify(report));
    const fail = (name: string) => report.checks.find((c) => c.name === name && c.status === 'fail');
    assert.match(
      fail('file:detector.model')?.message ?? '',
      /\/nonexistent\/yunet\.onnx.*KIOSK_E_MODEL_NOT_FOUND/,
    );
    assert.match(fail('file:mqtt.password_file')?.message ?? '', /does not exist/);
    assert.equal(existsSync(stateDir), false, 'doctor created the state directory');
    assert.match(report.checks.find((c) => c.name === 'state_dir')?.message ?? '', /can create it/);
  });
});
